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
 * The expressions, the threshold and the guards are the ones in rules/. One more rule is added
 * the way a platform engineer tunes a Deployment (an override in rules/, rules/examples/'s
 * pattern): payments/tuned at 0.1 cores, while the service keeps CPU_STDDEV_THRESHOLD at 0.3.
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
  // A spread of 0.18 cores: below the default 0.3 (and CPU_STDDEV_THRESHOLD, left at 0.3).
  // payments/tuned has its own rule at 0.1, written only in the rules; payments/untuned has none.
  const mildCpu = (name: string) => ({
    [`${name}-hot`]: 0.7,
    [`${name}-mid1`]: 0.5,
    [`${name}-mid2`]: 0.5,
    [`${name}-cold`]: 0.2,
  });
  /** The override a platform engineer adds to rules/ (the pattern of rules/examples/). */
  const TUNED_OVERRIDE = `groups:
  - name: override-payments-tuned
    rules:
      - record: pod_rebalancer:deployment_override
        expr: vector(1)
        labels: {namespace: payments, deployment: tuned}
      - alert: DeploymentCPUImbalance
        expr: |
          stddev by (namespace, deployment) (namespace_deployment_pod:cpu_usage:rate{namespace="payments", deployment="tuned"}) > 0.1
          and on (namespace, deployment)
            count by (namespace, deployment) (namespace_deployment_pod:cpu_usage:rate{namespace="payments", deployment="tuned"}) >= 3
        for: 10m
        labels: {severity: warning, pod_rebalancer_rule: payments-tuned}
        annotations:
          pod_rebalancer_threshold: "0.1"
          pod_rebalancer_measure: stddev
          pod_rebalancer_min_pods: "3"
`;

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
    for (const name of ['tuned', 'untuned']) {
      seedDeployment(
        { kube, prom: { cpu: new Map() } as never },
        { namespace: 'payments', name, cpu: mildCpu(name) },
      );
      for (const [pod, cpu] of Object.entries(mildCpu(name)))
        exporter.add({ namespace: 'payments', deployment: name, pod, cpu });
    }
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
    chain = await startChain({
      kube,
      exporter,
      logs,
      env: { COOLDOWN: '10m' },
      // Shortened like the shipped rules: its for: 10m becomes 5s.
      extraRules: { 'overrides.yml': TUNED_OVERRIDE.replace('for: 10m', 'for: 5s') },
    });
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

    expect(kube.removals.filter((r) => r.name.startsWith('api-'))).toEqual([
      { namespace: 'payments', name: 'api-hot1', via: 'eviction' },
      { namespace: 'payments', name: 'api-cold1', via: 'eviction' },
    ]);
    expect(decisions('api', 'imbalanced')).toHaveLength(1);
    expect(kube.removals.some((r) => r.name.startsWith('web'))).toBe(false);
  }, 120_000);

  it("acts on a Deployment whose threshold was lowered only in the rules, verifying against the alert's 0.1, not CPU_STDDEV_THRESHOLD 0.3", async () => {
    await waitFor(
      'the action on payments/tuned',
      () => kube.removals.filter((r) => r.name.startsWith('tuned-')).length >= 2,
      60_000,
    );

    expect(kube.removals.filter((r) => r.name.startsWith('tuned-'))).toEqual([
      { namespace: 'payments', name: 'tuned-hot', via: 'eviction' },
      { namespace: 'payments', name: 'tuned-cold', via: 'eviction' },
    ]);
    const [acted, ...more] = decisions('tuned', 'imbalanced');
    expect(more).toEqual([]);
    expect(acted).toMatchObject({
      detail: expect.stringMatching(
        /^CPU stddev 0\.\d+ cores is above the threshold 0\.1 \(alert annotation\)$/,
      ),
    });
    // Below the configured CPU_STDDEV_THRESHOLD: only the alert's own policy let it act.
    expect((acted!.stats as { stddev: number }).stddev).toBeLessThan(0.3);
    // The same spread without a rule of its own: the default rule (0.3) never fires.
    expect(logs.entries.filter((e) => e.deployment === 'untuned')).toEqual([]);
    expect(kube.removals.some((r) => r.name.startsWith('untuned-'))).toBe(false);
  }, 90_000);

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

    expect(kube.removals.filter((r) => r.name.startsWith('api-'))).toHaveLength(2);
  }, 90_000);
});
