/**
 * The 1,000-alert run's baseline: the same Kubernetes calls per Deployment as an action makes
 * (read the Deployment, create its Lease, evict two pods, create an Event), one after another,
 * sixteen Deployments at a time, through the same adapters, client and connection pool, with no
 * pipeline around them. What the run takes beyond this is the service's own cost; the rest is
 * what the client and the API server cost on this machine at this moment.
 */
import { V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import { createKubeApis } from '../src/adapters/kube-api.js';
import { KubernetesCluster } from '../src/adapters/kubernetes.js';
import { LeaseRegister } from '../src/adapters/lease-cas.js';
import type { World } from './shared.js';

/** As the pipeline's ACTING_AT_ONCE. */
const AT_ONCE = 16;

/** Seconds for every Deployment of `world` to get its five calls (a freshly seeded world). */
export async function rawActionCalls(kubeConfig: KubeConfig, world: World): Promise<number> {
  const apis = createKubeApis(kubeConfig, 10_000);
  const calls = {
    cluster: new KubernetesCluster(apis, 'bench'),
    leases: new LeaseRegister(apis, 'pod-rebalancer'),
  };
  const targets: { namespace: string; deployment: string }[] = [];
  for (let n = 0; n < world.namespaces; n++) {
    for (let d = 0; d < world.deploymentsPerNamespace; d++) {
      targets.push({ namespace: `ns-${n}`, deployment: `app-${d}` });
    }
  }
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < targets.length) await actionCalls(calls, targets[next++]!);
  };
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  return (performance.now() - started) / 1000;
}

async function actionCalls(
  { cluster, leases }: { cluster: KubernetesCluster; leases: LeaseRegister },
  target: { namespace: string; deployment: string },
): Promise<void> {
  const deployment = await cluster.readDeployment(target);
  if (!deployment) throw new Error(`${target.namespace}/${target.deployment} is not seeded`);
  const at = new Date();
  const pods = [`${deployment.name}-0`, `${deployment.name}-4`];
  await leases.swap(
    {
      metadata: {
        name: `raw.${deployment.namespace}.${deployment.name}`,
        annotations: {
          'pod-rebalancer.io/last-action': JSON.stringify({ at, stddev: 0.58, mean: 0.73, pods }),
        },
      },
      spec: {
        holderIdentity: 'bench',
        acquireTime: new V1MicroTime(at.getTime()),
        leaseDurationSeconds: 900,
      },
    },
    `the baseline's Lease of ${deployment.name}`,
  );
  for (const name of pods) {
    const result = await cluster.evictPod({
      namespace: deployment.namespace,
      name,
      uid: `uid-${name}`,
    });
    if (result !== 'removed') throw new Error(`evicting ${name}: ${result}`);
  }
  await cluster.recordEvent({
    deployment,
    type: 'Normal',
    reason: 'Rebalanced',
    action: 'Evict',
    message: `Evicted ${pods.join(' and ')}`,
    at,
  });
}
