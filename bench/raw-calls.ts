/**
 * The 1,000-alert run's baseline: the same Kubernetes calls per Deployment as an action makes
 * (read the Deployment, create its Lease, evict two pods, create an Event), one after another,
 * sixteen Deployments at a time, through the same client and connection pool, with no service
 * around them. What the run takes beyond this is the service's own cost; the rest is what the
 * client and the API server cost on this machine at this moment.
 */
import { V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import { createKubeApis } from '../src/adapters/kube-api.js';
import type { World } from './shared.js';

/** As the pipeline's ACTING_AT_ONCE. */
const AT_ONCE = 16;

/** Seconds for every Deployment of `world` to get its five calls (a freshly seeded world). */
export async function rawActionCalls(kubeConfig: KubeConfig, world: World): Promise<number> {
  const apis = createKubeApis(kubeConfig, 10_000);
  const targets: { namespace: string; name: string }[] = [];
  for (let n = 0; n < world.namespaces; n++) {
    for (let d = 0; d < world.deploymentsPerNamespace; d++) {
      targets.push({ namespace: `ns-${n}`, name: `app-${d}` });
    }
  }
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const { namespace, name } = targets[next++]!;
      await actionCalls(apis, namespace, name);
    }
  };
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  return (performance.now() - started) / 1000;
}

async function actionCalls(
  apis: ReturnType<typeof createKubeApis>,
  namespace: string,
  name: string,
): Promise<void> {
  const deployment = await apis.apps.readNamespacedDeployment({ namespace, name });
  const now = new Date();
  await apis.coordination.createNamespacedLease({
    namespace: 'pod-rebalancer',
    body: {
      metadata: {
        name: `raw.${namespace}.${name}`,
        annotations: {
          'pod-rebalancer.io/last-action': JSON.stringify({
            at: now,
            stddev: 0.58,
            mean: 0.73,
            pods: [`${name}-0`, `${name}-4`],
          }),
        },
      },
      spec: {
        holderIdentity: 'bench',
        acquireTime: new V1MicroTime(now.getTime()),
        leaseDurationSeconds: 900,
      },
    },
  });
  for (const pod of [`${name}-0`, `${name}-4`]) {
    await apis.core.createNamespacedPodEviction({
      namespace,
      name: pod,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace } },
    });
  }
  await apis.core.createNamespacedEvent({
    namespace,
    body: {
      metadata: { name: `${name}.raw`, namespace },
      involvedObject: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name,
        namespace,
        uid: deployment.metadata?.uid,
      },
      type: 'Normal',
      reason: 'Rebalanced',
      action: 'Evict',
      message: `Evicted ${name}-0 and ${name}-4`,
      eventTime: new V1MicroTime(now.getTime()),
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      source: { component: 'pod-rebalancer' },
      reportingComponent: 'pod-rebalancer.io/pod-rebalancer',
      reportingInstance: 'bench',
    },
  });
}
