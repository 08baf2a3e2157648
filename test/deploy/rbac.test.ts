import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IPolicyRule } from 'kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule';
import {
  KUSTOMIZATIONS,
  describeObject,
  rebalancerDeployment,
  renderKustomization,
  single,
  type KubeObject,
} from './render.js';

/** SPEC "Kubernetes footprint", one `group resource verb` per permission ("" is core). */
const SPEC_PERMISSIONS = [
  ' pods get',
  ' pods list',
  ' pods delete',
  ' pods/eviction create',
  'apps deployments get',
  'apps deployments list',
  'coordination.k8s.io leases get',
  'coordination.k8s.io leases create',
  'coordination.k8s.io leases update',
  ' events create',
];

/** Expands rules into single permissions, so that any grouping of the same grants compares equal. */
function permissionsOf(rules: IPolicyRule[]): string[] {
  return rules.flatMap((rule) =>
    (rule.apiGroups ?? []).flatMap((group) =>
      (rule.resources ?? []).flatMap((resource) =>
        rule.verbs.map((verb) => `${group} ${resource} ${verb}`),
      ),
    ),
  );
}

describe.each(KUSTOMIZATIONS)('RBAC rendered by %s', (dir) => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });

  it('grants exactly the permissions SPEC lists, in one ClusterRole and no other role', () => {
    const roles = objects.filter((object) => ['ClusterRole', 'Role'].includes(object.kind));
    expect(roles.map(describeObject)).toEqual(['ClusterRole/pod-rebalancer']);
    const rules = single<IClusterRole>(objects, 'ClusterRole', 'pod-rebalancer').rules ?? [];
    expect(new Set(permissionsOf(rules))).toEqual(new Set(SPEC_PERMISSIONS));
  });

  it('grants no wildcard, no named-resource restriction and no non-resource URL', () => {
    // Such fields would widen or bend the grant in ways a group/resource/verb comparison misses.
    const rules = single<IClusterRole>(objects, 'ClusterRole', 'pod-rebalancer').rules ?? [];
    const loose = rules.filter(
      (rule) =>
        [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs].includes('*') ||
        rule.resourceNames !== undefined ||
        rule.nonResourceURLs !== undefined,
    );
    expect(loose).toEqual([]);
    expect(single<IClusterRole>(objects, 'ClusterRole', 'pod-rebalancer').aggregationRule).toBe(
      undefined,
    );
  });

  it("binds the ClusterRole to the ServiceAccount the Deployment's pods run as", () => {
    const deployment = rebalancerDeployment(objects);
    const binding = single<IClusterRoleBinding>(objects, 'ClusterRoleBinding', 'pod-rebalancer');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'pod-rebalancer',
    });
    expect(binding.subjects).toEqual([
      {
        kind: 'ServiceAccount',
        name: deployment.spec?.template.spec?.serviceAccountName,
        namespace: deployment.metadata?.namespace,
      },
    ]);
  });

  it('gives the pod its ServiceAccount token, because the service calls the Kubernetes API', () => {
    const podSpec = rebalancerDeployment(objects).spec?.template.spec;
    const account = single<IServiceAccount>(
      objects,
      'ServiceAccount',
      podSpec?.serviceAccountName ?? 'default',
    );
    // The pod's setting wins over the ServiceAccount's; both unset means mounted.
    const mounted = podSpec?.automountServiceAccountToken ?? account.automountServiceAccountToken;
    expect(mounted ?? true).toBe(true);
  });
});
