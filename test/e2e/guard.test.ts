import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { CapturedLogs, seedDeployment } from '../support/harness.js';
import { waitFor } from '../support/processes.js';
import { decisionsOf, startChain, type Chain } from './chain.js';
import { SyntheticExporter } from './synthetic-exporter.js';

/** The documented example of GUARD_QUERY: any critical alert firing. */
const GUARD_QUERY = 'ALERTS{alertstate="firing", severity="critical"}';

/** A critical alert for the guard to see: the synthetic broker reports itself down. */
const BROKER_RULES = [
  'groups:',
  '  - name: e2e-broker',
  '    rules:',
  '      - alert: KafkaBrokerDown',
  '        expr: synthetic_broker_up == 0',
  '        labels: {severity: critical}',
].join('\n');

/**
 * The guard through the real chain: Prometheus evaluates the rules and a critical alert about a
 * broker, Alertmanager repeats the imbalance notification every few seconds, and the service
 * evaluates GUARD_QUERY against the real Prometheus with each notification. COOLDOWN is short
 * (20s), so that without the guard the notification after the cooldown would act again.
 */
describe('end to end: a guard series appears mid-run and the next notification is held back', () => {
  // After the hottest and the coldest go, the rest is still imbalanced: the alert keeps firing.
  const apiCpu = {
    'api-hot1': 2.0,
    'api-hot2': 1.9,
    'api-mid1': 0.6,
    'api-mid2': 0.62,
    'api-cold2': 0.06,
    'api-cold1': 0.05,
  };

  let kube: FakeKubeApiServer;
  let exporter: SyntheticExporter;
  let chain: Chain | undefined;
  const logs = new CapturedLogs();
  const decisions = (reason: string) => decisionsOf(logs, 'api', reason);
  const guardedEvents = () =>
    kube.events.filter((e: { reason?: string }) => e.reason === 'RebalanceGuarded');

  beforeAll(async () => {
    kube = await new FakeKubeApiServer().start();
    exporter = await new SyntheticExporter().start();
    seedDeployment(
      { kube, prom: { cpu: new Map() } as never },
      { namespace: 'payments', name: 'api', cpu: apiCpu },
    );
    for (const [pod, cpu] of Object.entries(apiCpu))
      exporter.add({ namespace: 'payments', deployment: 'api', pod, cpu });
    exporter.gauges.set('synthetic_broker_up{broker="b-1"}', 1);
    chain = await startChain({
      kube,
      exporter,
      logs,
      env: { COOLDOWN: '20s', GUARD_QUERY },
      extraRules: { 'broker.yml': BROKER_RULES },
    });
  }, 60_000);

  afterAll(async () => {
    await chain?.stop();
    await Promise.all([kube?.stop(), exporter?.stop()]);
  });

  it('acts while the guard returns nothing, holds back while the critical alert fires, and acts again once it resolves', async () => {
    await waitFor('the first action', () => kube.removals.length >= 2, 60_000);
    expect(decisions('guarded')).toEqual([]);

    // The broker goes down: Prometheus fires KafkaBrokerDown (severity critical) within seconds.
    exporter.gauges.set('synthetic_broker_up{broker="b-1"}', 0);
    await waitFor(
      'the next notification after the cooldown, held back by the guard',
      () => decisions('guarded').length >= 1,
      60_000,
    );

    expect(kube.removals).toHaveLength(2);
    const [held] = decisions('guarded');
    // Said as a count: the firing alert's own labels (its alertname) never reach the detail.
    expect(held!.detail).toContain('GUARD_QUERY holds: guard returned 1 series');
    expect(held!.detail).not.toContain('KafkaBrokerDown');
    // One per 20s cooldown window at most, however many notifications were held back.
    expect(guardedEvents().length).toBeGreaterThanOrEqual(1);
    expect(guardedEvents()[0]).toEqual(
      expect.objectContaining({
        type: 'Normal',
        reason: 'RebalanceGuarded',
        involvedObject: expect.objectContaining({ name: 'api' }),
      }),
    );

    // The broker is back: the alert resolves, the guard returns nothing, the next one acts.
    exporter.gauges.set('synthetic_broker_up{broker="b-1"}', 1);
    await waitFor('an action after the guard cleared', () => kube.removals.length >= 4, 90_000);

    expect(kube.removals.slice(2).map((r) => r.name)).toEqual(['api-hot2', 'api-cold2']);
  }, 200_000);
});
