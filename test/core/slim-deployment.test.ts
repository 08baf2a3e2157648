import { describe, expect, it } from '@jest/globals';
import type { V1Deployment } from '@kubernetes/client-node';
import { slimDeployment } from '../../src/adapters/caches.js';
import type { KubeApis } from '../../src/adapters/kube-api.js';
import { KubernetesCluster, toDeploymentFacts } from '../../src/adapters/kubernetes.js';

function fullDeployment(
  overrides: {
    annotations?: Record<string, string>;
    generation?: number;
    priorityClassName?: string;
    priority?: number;
  } = {},
): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'api',
      namespace: 'payments',
      uid: 'uid-1',
      resourceVersion: '42',
      generation: overrides.generation ?? 3,
      labels: { app: 'api', team: 'payments' },
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(20_000),
        'pod-rebalancer.io/enabled': 'false',
        ...overrides.annotations,
      },
      managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    },
    spec: {
      replicas: 4,
      selector: {
        matchLabels: { app: 'api' },
        matchExpressions: [{ key: 'tier', operator: 'Exists' }],
      },
      template: {
        metadata: { labels: { app: 'api' } },
        spec: {
          containers: [
            { name: 'api', image: 'api:1', env: [{ name: 'A', value: 'y'.repeat(5000) }] },
          ],
          priorityClassName: overrides.priorityClassName,
          priority: overrides.priority,
        },
      },
    },
    status: {
      observedGeneration: 3,
      replicas: 4,
      updatedReplicas: 4,
      readyReplicas: 4,
      availableReplicas: 4,
    },
  };
}

describe('the Deployment cache keeps only what the service reads', () => {
  it.each([
    ['settled', fullDeployment()],
    ['mid-rollout (a newer generation)', fullDeployment({ generation: 4 })],
    ['opted in', fullDeployment({ annotations: { 'pod-rebalancer.io/enabled': 'true' } })],
    // The scope rules read these: a slim copy without them would act on system-critical pods.
    ['system-critical by class', fullDeployment({ priorityClassName: 'system-node-critical' })],
    ['system-critical by priority', fullDeployment({ priority: 2_000_000_000 })],
  ])(
    'when %s, then the facts read from the slim copy equal those of the full object',
    (_name, deployment) => {
      expect(toDeploymentFacts(slimDeployment(deployment))).toEqual(toDeploymentFacts(deployment));
    },
  );

  it('when a Deployment carries large unrelated fields, then the slim copy drops them (a small fraction of the size)', () => {
    const deployment = fullDeployment();
    const slim = slimDeployment(deployment);

    expect(Object.keys(slim.metadata?.annotations ?? {})).toEqual(['pod-rebalancer.io/enabled']);
    expect(slim.metadata?.managedFields).toBeUndefined();
    // Of the pod template, only the priority the scope rules read; no containers, no env.
    expect(slim.spec?.template).toEqual({
      spec: { containers: [], priorityClassName: undefined, priority: undefined },
    });
    expect(JSON.stringify(slim).length).toBeLessThan(JSON.stringify(deployment).length / 20);
  });
});

describe('the facts of a cached Deployment are computed once per version of it', () => {
  const target = { namespace: 'payments', deployment: 'api' };
  // A watch cache replaces an object when it changes, never mutates it.
  const cacheHolding = (holds: { current: V1Deployment }) => ({
    covers: () => true,
    get: () => holds.current,
  });
  // Never called: the cache answers for every namespace.
  const noApiServer = {} as KubeApis;

  it('when the cache hands out the same object again, then the same facts come back (an alert storm reads them on every repeat)', async () => {
    const holds = { current: slimDeployment(fullDeployment()) };
    const cluster = new KubernetesCluster(noApiServer, 'test', cacheHolding(holds));

    const first = await cluster.getDeployment(target);
    expect(await cluster.getDeployment(target)).toBe(first);
  });

  it('when the cache replaced the object (an opt-out arrived), then its new facts are read at once', async () => {
    const enabled = { 'pod-rebalancer.io/enabled': 'true' };
    const holds = { current: slimDeployment(fullDeployment({ annotations: enabled })) };
    const cluster = new KubernetesCluster(noApiServer, 'test', cacheHolding(holds));
    expect((await cluster.getDeployment(target))?.optedOut).toBe(false);

    holds.current = slimDeployment(fullDeployment());

    expect((await cluster.getDeployment(target))?.optedOut).toBe(true);
  });
});
