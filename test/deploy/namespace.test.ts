import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  describeObject,
  rebalancerConfig,
  renderKustomization,
  USER_OVERLAY,
  type KubeObject,
} from './render.js';

const MOVED_TO = 'platform-tools';
const CLUSTER_SCOPED = ['Namespace', 'ClusterRole', 'ClusterRoleBinding'];

/** The example overlay as a user edits it: another `namespace:`, and the delete-pods component. */
function renderIn(namespace: string, overlay: (text: string) => string = (t) => t): KubeObject[] {
  return renderKustomization(USER_OVERLAY, (text) => {
    const moved = text.replace(/^namespace: pod-rebalancer$/m, `namespace: ${namespace}`);
    if (moved === text) throw new Error(`${USER_OVERLAY} has no line "namespace: pod-rebalancer"`);
    return overlay(moved).replace(
      /^components:\n/m,
      'components:\n  - https://github.com/pod-rebalancer/pod-rebalancer//deploy/components/delete-pods?ref=main\n',
    );
  });
}

/** Every `namespace` field anywhere in an object, with where it is. */
function namespaceFields(value: unknown, path: string, into: [string, unknown][] = []) {
  if (Array.isArray(value))
    value.forEach((item, i) => namespaceFields(item, `${path}[${i}]`, into));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, field] of Object.entries(value)) {
      if (key === 'namespace') into.push([`${path}.${key}`, field]);
      else namespaceFields(field, `${path}.${key}`, into);
    }
  }
  return into;
}

type Binding = KubeObject & { subjects: { kind: string; name: string; namespace?: string }[] };

describe(`the example overlay with namespace: ${MOVED_TO}`, () => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderIn(MOVED_TO);
  });

  it('creates that namespace and puts every namespaced object in it', () => {
    expect(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual([
      MOVED_TO,
    ]);
    const elsewhere = objects
      .filter((o) => !CLUSTER_SCOPED.includes(o.kind))
      .filter((o) => o.metadata.namespace !== MOVED_TO)
      .map(describeObject);
    expect(elsewhere).toEqual([]);
  });

  it("then every RoleBinding and ClusterRoleBinding, the delete-pods component's included, binds the ServiceAccount in that namespace", () => {
    const bindings = objects.filter((o): o is Binding => o.kind.endsWith('RoleBinding'));
    const subjects = bindings.flatMap((b) =>
      b.subjects.map((s) => `${describeObject(b)} ${s.kind} ${s.namespace}/${s.name}`),
    );

    expect(subjects.sort()).toEqual([
      `ClusterRoleBinding/pod-rebalancer ServiceAccount ${MOVED_TO}/pod-rebalancer`,
      `ClusterRoleBinding/pod-rebalancer-delete-pods ServiceAccount ${MOVED_TO}/pod-rebalancer`,
      `RoleBinding/pod-rebalancer-state ServiceAccount ${MOVED_TO}/pod-rebalancer`,
    ]);
  });

  it('then no field anywhere still names the pod-rebalancer namespace', () => {
    const stale = objects
      .flatMap((o) => namespaceFields(o, describeObject(o)))
      .filter(([, value]) => value === 'pod-rebalancer');

    expect(stale).toEqual([]);
  });

  it("then the components' settings still merge into the one generated ConfigMap", () => {
    expect(rebalancerConfig(objects)).toMatchObject({ ACTION: 'delete', DRY_RUN: 'true' });
  });

  it('without the replacements the bindings would keep the old namespace (what they are there for)', () => {
    const withoutReplacements = renderIn(MOVED_TO, (text) =>
      text.replace(/^replacements:[\s\S]*$/m, ''),
    );
    const subjects = withoutReplacements
      .filter((o): o is Binding => o.kind.endsWith('RoleBinding'))
      .flatMap((b) => b.subjects.map((s) => s.namespace));

    expect(subjects).toContain('pod-rebalancer');
  });
});
