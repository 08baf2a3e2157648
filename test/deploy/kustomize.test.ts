import * as kubernetesModels from 'kubernetes-models';
import * as prometheusOperatorModels from '@kubernetes-models/prometheus-operator';
import { KUSTOMIZATIONS, describeObject, renderKustomization, type KubeObject } from './render.js';

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: unknown): { validate(): void };
}

function isModelClass(value: unknown): value is ModelClass {
  if (typeof value !== 'function') return false;
  const candidate = value as unknown as Partial<ModelClass>;
  return typeof candidate.apiVersion === 'string' && typeof candidate.kind === 'string';
}

/** Every generated model class, keyed by `apiVersion/kind`, found by walking the module exports. */
function collectModels(exports: object, into = new Map<string, ModelClass>()): typeof into {
  for (const value of Object.values(exports)) {
    if (isModelClass(value)) {
      into.set(`${value.apiVersion}/${value.kind}`, value);
    } else if (typeof value === 'object' && value !== null) {
      collectModels(value, into);
    }
  }
  return into;
}

const models = collectModels([kubernetesModels, prometheusOperatorModels]);

/** Schema errors of one object; an object we have no schema for is an error too. */
function schemaErrors(object: KubeObject): string[] {
  const Model = models.get(`${object.apiVersion}/${object.kind}`);
  if (Model === undefined) {
    return [`${describeObject(object)}: no schema for ${object.apiVersion} ${object.kind}`];
  }
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    return [`${describeObject(object)}: ${(error as Error).message}`];
  }
}

describe.each(KUSTOMIZATIONS)('kubectl kustomize %s', (dir) => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });

  it('renders every object pod-rebalancer needs, each once', () => {
    // The optional Grafana dashboard (a component) is checked in dashboard.test.ts, the user
    // overlay's own tuning rule in kube-prometheus-stack.test.ts.
    const yours = ['pod-rebalancer-dashboard', 'pod-rebalancer-checkout-order-consumer'];
    const service = objects.filter((o) => !yours.includes(o.metadata.name));
    expect(service.map((object) => object.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'Namespace',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
  });

  it('validates every rendered object against its Kubernetes or prometheus-operator schema', () => {
    expect(objects.flatMap(schemaErrors)).toEqual([]);
  });

  it('puts every namespaced object in the pod-rebalancer namespace', () => {
    const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding'];
    const misplaced = objects
      .filter((object) => !clusterScoped.includes(object.kind))
      .filter((object) => object.metadata.namespace !== 'pod-rebalancer')
      .map(describeObject);
    expect(misplaced).toEqual([]);
  });
});

describe('schema validation', () => {
  it('rejects a Deployment whose container runs as a non-numeric user', () => {
    // Guards the guard: if the model lookup silently matched nothing, every object would "pass".
    const broken: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'broken' },
      spec: {
        selector: {},
        template: {
          spec: { containers: [{ name: 'c', image: 'i', securityContext: { runAsUser: 'x' } }] },
        },
      },
    };
    expect(schemaErrors(broken)).toEqual([expect.stringContaining('runAsUser must be integer')]);
  });
});
