import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IPolicyRule } from 'kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule';
import {
  KUSTOMIZATIONS,
  describeObject,
  ofKind,
  rebalancerConfig,
  rebalancerDeployment,
  renderKustomization,
  renderWithComponents,
  single,
  type KubeObject,
} from './render.js';

/** SPEC "Kubernetes footprint", cluster-wide, one `group resource verb` per permission ("" is core). */
const CLUSTER_PERMISSIONS = [
  ' pods get',
  ' pods list',
  ' pods/eviction create',
  'apps deployments get',
  'apps deployments list',
  'apps deployments watch',
  'autoscaling horizontalpodautoscalers get',
  'autoscaling horizontalpodautoscalers list',
  'autoscaling horizontalpodautoscalers watch',
  ' events create',
];
/** In STATE_NAMESPACE only. */
const STATE_PERMISSIONS = ['get', 'list', 'watch', 'create', 'update', 'delete'].map(
  (verb) => `coordination.k8s.io leases ${verb}`,
);

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

function ruleAllows(rule: IPolicyRule, group: string, resource: string, verb: string): boolean {
  const has = (list: string[] | undefined, value: string) =>
    (list ?? []).includes(value) || (list ?? []).includes('*');
  return (
    has(rule.apiGroups, group) &&
    has(rule.resources, resource) &&
    has(rule.verbs, verb) &&
    rule.resourceNames === undefined
  );
}

/**
 * What Kubernetes' RBAC authorizer answers for the service account, from the rendered objects:
 * a ClusterRoleBinding grants its role everywhere; a RoleBinding grants its Role or ClusterRole
 * only in the RoleBinding's own namespace.
 */
function can(
  objects: KubeObject[],
  account: { name: string; namespace: string },
  request: { verb: string; group: string; resource: string; namespace: string },
): boolean {
  const isAccount = (binding: IClusterRoleBinding | IRoleBinding) =>
    (binding.subjects ?? []).some(
      (s) =>
        s.kind === 'ServiceAccount' && s.name === account.name && s.namespace === account.namespace,
    );
  const rulesOf = (kind: string, name: string, namespace?: string): IPolicyRule[] => {
    const role = objects.find(
      (o) =>
        o.kind === kind &&
        o.metadata.name === name &&
        (kind === 'ClusterRole' || o.metadata.namespace === namespace),
    ) as IClusterRole | IRole | undefined;
    return role?.rules ?? [];
  };
  const granted = [
    ...ofKind<IClusterRoleBinding>(objects, 'ClusterRoleBinding')
      .filter(isAccount)
      .flatMap((b) => rulesOf(b.roleRef.kind, b.roleRef.name)),
    ...ofKind<IRoleBinding>(objects, 'RoleBinding')
      .filter((b) => isAccount(b) && b.metadata?.namespace === request.namespace)
      .flatMap((b) => rulesOf(b.roleRef.kind, b.roleRef.name, b.metadata?.namespace)),
  ];
  return granted.some((rule) => ruleAllows(rule, request.group, request.resource, request.verb));
}

const LEASE_WRITES = ['create', 'update', 'patch', 'delete'];

describe.each(KUSTOMIZATIONS)('RBAC rendered by %s', (dir) => {
  let objects: KubeObject[];
  let account: { name: string; namespace: string };
  beforeAll(() => {
    objects = renderKustomization(dir);
    const deployment = rebalancerDeployment(objects);
    account = {
      name: deployment.spec?.template.spec?.serviceAccountName ?? 'default',
      namespace: deployment.metadata?.namespace ?? '',
    };
  });

  it('grants exactly the cluster-wide permissions SPEC lists, in one ClusterRole: no Lease verb, no pod delete', () => {
    const roles = objects.filter((object) => object.kind === 'ClusterRole');
    expect(roles.map(describeObject)).toEqual(['ClusterRole/pod-rebalancer']);
    const rules = single<IClusterRole>(objects, 'ClusterRole', 'pod-rebalancer').rules ?? [];
    expect(new Set(permissionsOf(rules))).toEqual(new Set(CLUSTER_PERMISSIONS));
  });

  it("grants the Lease verbs in a Role in the service's own namespace only", () => {
    const roles = ofKind<IRole>(objects, 'Role');
    expect(roles.map((r) => `${r.metadata?.namespace}/${r.metadata?.name}`)).toEqual([
      'pod-rebalancer/pod-rebalancer-state',
    ]);
    expect(new Set(permissionsOf(roles[0]!.rules ?? []))).toEqual(new Set(STATE_PERMISSIONS));
  });

  it('when the token is stolen, then it cannot write a Lease in kube-system or kube-node-lease, nor anywhere but its own namespace', () => {
    for (const namespace of ['kube-system', 'kube-node-lease', 'payments']) {
      for (const verb of LEASE_WRITES) {
        const request = { verb, group: 'coordination.k8s.io', resource: 'leases', namespace };
        expect({ ...request, allowed: can(objects, account, request) }).toMatchObject({
          allowed: false,
        });
      }
    }
    const own = { group: 'coordination.k8s.io', resource: 'leases', namespace: account.namespace };
    expect(can(objects, account, { ...own, verb: 'update' })).toBe(true);
    expect(can(objects, account, { ...own, verb: 'watch' })).toBe(true);
  });

  it('when the token is stolen, then it cannot delete pods, only evict them (PodDisruptionBudgets hold)', () => {
    for (const namespace of ['payments', 'kube-system', account.namespace]) {
      expect(
        can(objects, account, { verb: 'delete', group: '', resource: 'pods', namespace }),
      ).toBe(false);
      expect(
        can(objects, account, { verb: 'create', group: '', resource: 'pods/eviction', namespace }),
      ).toBe(true);
    }
  });

  it('grants no wildcard, no named-resource restriction and no non-resource URL', () => {
    // Such fields would widen or bend the grant in ways a group/resource/verb comparison misses.
    const rules = [
      ...ofKind<IClusterRole>(objects, 'ClusterRole'),
      ...ofKind<IRole>(objects, 'Role'),
    ].flatMap((role) => role.rules ?? []);
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

  it("binds the roles to the ServiceAccount the Deployment's pods run as", () => {
    const deployment = rebalancerDeployment(objects);
    const subjects = [
      {
        kind: 'ServiceAccount',
        name: deployment.spec?.template.spec?.serviceAccountName,
        namespace: deployment.metadata?.namespace,
      },
    ];
    const binding = single<IClusterRoleBinding>(objects, 'ClusterRoleBinding', 'pod-rebalancer');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'pod-rebalancer',
    });
    expect(binding.subjects).toEqual(subjects);
    const state = single<IRoleBinding>(objects, 'RoleBinding', 'pod-rebalancer-state');
    expect(state.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'pod-rebalancer-state',
    });
    expect(state.subjects).toEqual(subjects);
  });

  it('tells the service its state namespace from the downward API (its own namespace)', () => {
    const env = rebalancerDeployment(objects).spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'STATE_NAMESPACE')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'metadata.namespace' },
    });
  });

  it('gives the pod its ServiceAccount token, because the service calls the Kubernetes API', () => {
    const podSpec = rebalancerDeployment(objects).spec?.template.spec;
    const accountObject = single<IServiceAccount>(
      objects,
      'ServiceAccount',
      podSpec?.serviceAccountName ?? 'default',
    );
    // The pod's setting wins over the ServiceAccount's; both unset means mounted.
    const mounted =
      podSpec?.automountServiceAccountToken ?? accountObject.automountServiceAccountToken;
    expect(mounted ?? true).toBe(true);
  });
});

describe('the delete-pods component (ACTION=delete)', () => {
  it('when added, then the service may delete pods and is configured to, and still writes no Lease outside its namespace', () => {
    const objects = renderWithComponents(['deploy/components/delete-pods']);
    const account = { name: 'pod-rebalancer', namespace: 'pod-rebalancer' };
    expect(
      can(objects, account, { verb: 'delete', group: '', resource: 'pods', namespace: 'payments' }),
    ).toBe(true);
    expect(rebalancerConfig(objects).ACTION).toBe('delete');
    expect(
      can(objects, account, {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'kube-node-lease',
      }),
    ).toBe(false);
  });
});
