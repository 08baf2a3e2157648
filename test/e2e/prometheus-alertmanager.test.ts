import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { CapturedLogs, seedDeployment } from '../support/harness.js';
import { waitFor } from '../support/processes.js';
import { decisionsOf, startChain, type Chain } from './chain.js';
import { SyntheticExporter } from './synthetic-exporter.js';

/**
 * The whole chain with the real programs: a synthetic exporter → a real Prometheus evaluating
 * rules/ → a real Alertmanager → the service's webhook (Bearer token) → the fake Kubernetes API.
 *
 * Only the timing is shortened, in the test's own configuration (see startChain in chain.ts):
 * 1s scrape and evaluation intervals, Alertmanager timers of seconds, and in a temporary copy of
 * the rules `for: 10m` → 5s and the rate window 5m → 20s (the service's METRICS_WINDOW with it).
 * The expressions, the threshold and the guards are the ones in rules/.
 */
describe('end to end: Prometheus → Alertmanager → pod-rebalancer → Kubernetes API', () => {
  const api = { namespace: 'payments', name: 'api' };
  // After the hottest and the coldest go, the rest is still imbalanced: the alert keeps firing.
  const apiCpu = {
    'api-hot1': 2.0,
    'api-hot2': 1.9,
    'api-mid1': 0.6,
    'api-mid2': 0.62,
    'api-cold2': 0.06,
    'api-cold1': 0.05,
  };
  // Balanced application containers; only the pod-level and pause series are skewed.
  const webCpu = { 'web-a': 0.5, 'web-b': 0.52, 'web-c': 0.48, 'web-d': 0.5 };

  let kube: FakeKubeApiServer;
  let exporter: SyntheticExporter;
  let chain: Chain | undefined;
  const logs = new CapturedLogs();
  const decisions = (deployment: string, reason: string) => decisionsOf(logs, deployment, reason);

  beforeAll(async () => {
    kube = await new FakeKubeApiServer().start();
    exporter = await new SyntheticExporter().start();

    seedDeployment({ kube, prom: { cpu: new Map() } as never }, { ...api, cpu: apiCpu });
    seedDeployment(
      { kube, prom: { cpu: new Map() } as never },
      { namespace: 'payments', name: 'web', cpu: webCpu },
    );
    for (const [pod, cpu] of Object.entries(apiCpu))
      exporter.add({ namespace: 'payments', deployment: 'api', pod, cpu });
    for (const [pod, cpu] of Object.entries(webCpu)) {
      exporter.add({
        namespace: 'payments',
        deployment: 'web',
        pod,
        cpu,
        podLevelCpu: pod === 'web-a' ? 3 : cpu + 0.01,
        pauseCpu: pod === 'web-b' ? 2 : 0.001,
      });
    }
    chain = await startChain({ kube, exporter, logs, env: { COOLDOWN: '10m' } });
  }, 60_000);

  afterAll(async () => {
    await chain?.stop();
    await Promise.all([kube?.stop(), exporter?.stop()]);
  });

  it("removes exactly the imbalanced Deployment's highest- and lowest-CPU pods, and nothing of the balanced one", async () => {
    await waitFor('the first action', () => kube.removals.length >= 2, 60_000);
    // Give any further (wrong) action time to show up before judging.
    await waitFor(
      'two more notifications for payments/api inside the cooldown',
      () => decisions('api', 'cooldown').length >= 2,
      30_000,
    );

    expect(kube.removals).toEqual([
      { namespace: 'payments', name: 'api-hot1', via: 'eviction' },
      { namespace: 'payments', name: 'api-cold1', via: 'eviction' },
    ]);
    expect(decisions('api', 'imbalanced')).toHaveLength(1);
    expect(kube.removals.some((r) => r.name.startsWith('web'))).toBe(false);
  }, 120_000);

  it('never sends an alert for the balanced Deployment, whose skew is only in the pause and pod-level series', () => {
    expect(logs.entries.filter((e) => e.message === 'decision' && e.deployment === 'web')).toEqual(
      [],
    );
  });

  it('acknowledges the resolved notification and removes nothing more', async () => {
    // Scale the imbalanced rest away: two pods are left, under the rule's guard of three.
    for (const pod of ['api-hot2', 'api-cold2', 'api-mid2']) {
      exporter.pods.delete(`payments/${pod}`);
      kube.pods.delete(`payments/${pod}`);
    }

    await waitFor(
      'a resolved notification for payments/api',
      () => decisions('api', 'resolved').length >= 1,
      60_000,
    );

    expect(kube.removals).toHaveLength(2);
  }, 90_000);
});
