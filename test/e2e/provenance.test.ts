import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { CapturedLogs, seedDeployment, TOKEN } from '../support/harness.js';
import { waitFor } from '../support/processes.js';
import { decisionsOf, startChain, type Chain } from './chain.js';
import { SyntheticExporter } from './synthetic-exporter.js';

/**
 * Provenance through the real programs: the synthetic exporter → a real Prometheus 2.42
 * evaluating rules/ → a real Alertmanager 0.25 → the service (ALERT_PROVENANCE=rules, its
 * default, asking the same Prometheus's /api/v1/rules) → the fake Kubernetes API.
 *
 * payments/steady is balanced: the rule never fires for it. A forger writes an alert for it
 * with a threshold and a pod count that switch off the re-verification, and sends it (a) to the
 * webhook with the token, (b) into Alertmanager's API, which takes alerts from anyone who can
 * reach it. Neither removes a pod. payments/api is imbalanced: the rule's own alert still acts.
 */
describe('end to end: forged alerts against the real Prometheus and Alertmanager', () => {
  const steadyCpu = { 'steady-a': 0.5, 'steady-b': 0.52, 'steady-c': 0.49 };
  const apiCpu = {
    'api-hot1': 2.0,
    'api-mid1': 0.6,
    'api-mid2': 0.62,
    'api-cold1': 0.05,
  };
  const forgedLabels = {
    alertname: 'DeploymentCPUImbalance',
    namespace: 'payments',
    deployment: 'steady',
    severity: 'warning',
  };
  const forgedAnnotations = {
    summary: 'CPU imbalance in payments/steady',
    pod_rebalancer_threshold: '0.000001',
    pod_rebalancer_min_pods: '2',
  };

  let kube: FakeKubeApiServer;
  let exporter: SyntheticExporter;
  let chain: Chain | undefined;
  const logs = new CapturedLogs();
  const decisions = (deployment: string, reason: string) => decisionsOf(logs, deployment, reason);

  beforeAll(async () => {
    kube = await new FakeKubeApiServer().start();
    exporter = await new SyntheticExporter().start();
    const world = { kube, prom: { cpu: new Map() } as never };
    seedDeployment(world, { namespace: 'payments', name: 'steady', cpu: steadyCpu });
    seedDeployment(world, { namespace: 'payments', name: 'api', cpu: apiCpu });
    for (const [name, cpu] of [
      ['steady', steadyCpu],
      ['api', apiCpu],
    ] as const) {
      for (const [pod, value] of Object.entries(cpu))
        exporter.add({ namespace: 'payments', deployment: name, pod, cpu: value });
    }
    chain = await startChain({ kube, exporter, logs, env: { COOLDOWN: '10m' } });
  }, 60_000);

  afterAll(async () => {
    await chain?.stop();
    await Promise.all([kube?.stop(), exporter?.stop()]);
  });

  it("acts on the rule's own alert with provenance on", async () => {
    await waitFor(
      'the action on payments/api',
      () => decisions('api', 'imbalanced').length >= 1,
      60_000,
    );

    expect(kube.removals.filter((r) => r.name.startsWith('api-'))).toEqual([
      { namespace: 'payments', name: 'api-hot1', via: 'eviction' },
      { namespace: 'payments', name: 'api-cold1', via: 'eviction' },
    ]);
  }, 90_000);

  it('(a) when a forged alert is posted to the webhook with the token, then it is unconfirmed-alert and removes nothing', async () => {
    const res = await fetch(`${chain!.serviceUrl}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        version: '4',
        status: 'firing',
        receiver: 'pod-rebalancer',
        groupKey: '{}:{deployment="steady", namespace="payments"}',
        truncatedAlerts: 0,
        alerts: [
          {
            status: 'firing',
            labels: forgedLabels,
            annotations: forgedAnnotations,
            startsAt: new Date().toISOString(),
            endsAt: '0001-01-01T00:00:00Z',
            fingerprint: 'f0f0f0f0f0f0f0f0',
          },
        ],
      }),
    });

    expect(res.status).toBe(200);
    const report = (await res.json()) as { results: { reason: string; detail: string }[] };
    expect(report.results).toEqual([
      expect.objectContaining({ outcome: 'skipped', reason: 'unconfirmed-alert' }),
    ]);
    expect(kube.removals.filter((r) => r.name.startsWith('steady-'))).toEqual([]);
  }, 30_000);

  it("(b) when a forged alert is injected through Alertmanager's POST /api/v2/alerts, then Alertmanager delivers it, it is unconfirmed-alert and removes nothing", async () => {
    const injected = await fetch(`${chain!.alertmanagerUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          labels: forgedLabels,
          annotations: forgedAnnotations,
          startsAt: new Date().toISOString(),
          endsAt: new Date(Date.now() + 10 * 60_000).toISOString(),
        },
      ]),
    });
    expect(injected.status).toBe(200);

    await waitFor(
      'Alertmanager to deliver the injected alert',
      () => decisions('steady', 'unconfirmed-alert').length >= 2,
      60_000,
    );

    expect(kube.removals.filter((r) => r.name.startsWith('steady-'))).toEqual([]);
    expect(decisions('steady', 'imbalanced')).toEqual([]);
    expect(kube.events.filter((e) => JSON.stringify(e).includes('steady'))).toEqual([]);
  }, 90_000);
});
