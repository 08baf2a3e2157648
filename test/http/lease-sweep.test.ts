import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { LeaseCooldownStore } from '../../src/adapters/cooldown-lease.js';
import { createKubeApis, KubernetesCluster } from '../../src/adapters/kubernetes.js';
import { createLogger } from '../../src/adapters/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { sweepStaleCooldowns } from '../../src/stages/sweep.js';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { CapturedLogs, seedDeployment } from '../support/harness.js';
import { FakePrometheus } from '../support/fake-prometheus.js';
import { cooldownLeaseAt } from '../operator/leases.js';

let kube: FakeKubeApiServer;
afterEach(() => kube?.stop());

/** The cooldown Lease of `namespace/deployment`, written for the Deployment of uid `uid`. */
const lease = (namespace: string, deployment: string, uid: string) =>
  cooldownLeaseAt(namespace, deployment, new Date(), { uid });

async function setup(dryRun: boolean) {
  kube = await new FakeKubeApiServer().start();
  const world = { kube, prom: new FakePrometheus() };
  seedDeployment(world, { namespace: 'payments', name: 'live', cpu: { 'live-a': 1 } });
  seedDeployment(world, { namespace: 'payments', name: 'reborn', cpu: { 'reborn-a': 1 } });
  kube.leases.set('pod-rebalancer/payments.live', lease('payments', 'live', 'uid-deploy-live'));
  kube.leases.set('pod-rebalancer/payments.reborn', lease('payments', 'reborn', 'uid-old'));
  kube.leases.set('pod-rebalancer/payments.gone', lease('payments', 'gone', 'uid-deploy-gone'));
  // Not a cooldown Lease (no pod-rebalancer.io labels): e.g. the action budget.
  kube.leases.set('pod-rebalancer/budget', {
    metadata: { name: 'budget', namespace: 'pod-rebalancer', resourceVersion: '3' },
    spec: {},
  });
  const apis = createKubeApis(kube.kubeConfig(), 5000);
  const logs = new CapturedLogs();
  const registry = new Registry();
  const deps = {
    cluster: new KubernetesCluster(apis, 'test'),
    cooldown: new LeaseCooldownStore(apis, 'pod-rebalancer'),
    telemetry: createMetrics(registry),
    logger: createLogger('info', logs.transport()),
    dryRun,
  };
  return { deps, logs, registry };
}

describe('sweeping the Leases of Deployments that are gone', () => {
  it('when a Deployment was deleted or recreated, then its Lease is deleted, logged and counted; the live one and the budget stay', async () => {
    const { deps, logs, registry } = await setup(false);

    const swept = await sweepStaleCooldowns(deps);

    expect(swept).toEqual(
      expect.arrayContaining([
        {
          namespace: 'payments',
          deployment: 'reborn',
          reason: 'deployment-recreated',
          result: 'deleted',
        },
        { namespace: 'payments', deployment: 'gone', reason: 'deployment-gone', result: 'deleted' },
      ]),
    );
    expect([...kube.leases.keys()].sort()).toEqual([
      'pod-rebalancer/budget',
      'pod-rebalancer/payments.live',
    ]);
    expect(logs.entries.filter((e) => e.message === 'sweep: stale cooldown Lease')).toHaveLength(2);
    const metric = await registry.getSingleMetricAsString('pod_rebalancer_leases_swept_total');
    expect(metric).toContain('reason="deployment-gone",result="deleted"} 1');
    expect(metric).toContain('reason="deployment-recreated",result="deleted"} 1');
  });

  it('when DRY_RUN is true, then it says what it would sweep and deletes nothing', async () => {
    const { deps, logs, registry } = await setup(true);

    const swept = await sweepStaleCooldowns(deps);

    expect(swept.map((s) => s.result)).toEqual(['would-delete', 'would-delete']);
    expect(kube.leases.size).toBe(4);
    expect(kube.requests.filter((r) => r.method === 'DELETE')).toEqual([]);
    expect(
      logs.entries.filter((e) => e.message === 'sweep: dry run, would delete stale cooldown Lease'),
    ).toHaveLength(2);
    expect(await registry.getSingleMetricAsString('pod_rebalancer_leases_swept_total')).toContain(
      'reason="deployment-gone",result="would-delete"} 1',
    );
  });

  it('when the Lease is taken again between the list and the delete, then it stays (the delete is conditional)', async () => {
    const { deps } = await setup(false);
    kube.afterRequest = (method, path) => {
      if (method === 'GET' && path.endsWith('/deployments/reborn')) {
        kube.leases.get('pod-rebalancer/payments.reborn')!.metadata.resourceVersion = '6';
      }
    };

    const swept = await sweepStaleCooldowns(deps);

    expect(swept).toContainEqual(
      expect.objectContaining({ deployment: 'reborn', result: 'changed' }),
    );
    expect(kube.leases.has('pod-rebalancer/payments.reborn')).toBe(true);
  });

  it('when a Deployment cannot be read (403), then its Lease stays', async () => {
    const { deps, logs } = await setup(false);
    kube.fail({ method: 'GET', path: /\/deployments\/gone$/, status: 403 });

    const swept = await sweepStaleCooldowns(deps);

    expect(swept.map((s) => s.deployment)).toEqual(['reborn']);
    expect(kube.leases.has('pod-rebalancer/payments.gone')).toBe(true);
    expect(logs.lines.join('\n')).toContain('cannot read the Deployment');
  });
});
