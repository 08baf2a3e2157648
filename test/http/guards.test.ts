import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import type { Clock } from '../../src/ports.js';
import {
  type Harness,
  postWebhook,
  seedDeployment,
  seedImbalanced,
  startHarness,
} from '../support/harness.js';
import { payload } from './payload.js';

const CRITICAL = 'ALERTS{alertstate="firing", severity="critical"}';
const BROKER_DOWN = {
  labels: {
    __name__: 'ALERTS',
    alertname: 'KafkaBrokerDown',
    alertstate: 'firing',
    severity: 'critical',
  },
  value: 1,
};
const EXAMPLE_RULE = new URL('../../rules/examples/consumer-lag-guard.rules.yml', import.meta.url);

let h: Harness;
afterEach(() => h?.stop());

const post = (body: unknown, app = h.service.app) => postWebhook(app, body);

const alertFor = (deployment: string, annotations: Record<string, string> = {}) => ({
  labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
  annotations,
  fingerprint: `fp-${deployment}`,
});

const guardedEvents = () =>
  h.kube.events.filter((e: { reason?: string }) => e.reason === 'RebalanceGuarded');

/**
 * The guard of rules/examples/consumer-lag-guard.rules.yml rendered the way Prometheus renders
 * it for an alert about `deployment` (its promtool test proves Prometheus renders it so).
 */
function exampleGuardFor(deployment: string): string {
  const rule = parse(readFileSync(EXAMPLE_RULE, 'utf8')).groups[0].rules[0];
  return (rule.annotations.pod_rebalancer_guard as string).replace(
    '{{ $labels.deployment }}',
    deployment,
  );
}

describe('GUARD_QUERY: while it returns any series, no Deployment is acted on', () => {
  it('when a critical alert is firing, then the imbalanced Deployment is skipped as guarded, naming the guard and how many series (never their labels), with no Lease and nothing removed', async () => {
    h = await startHarness({ GUARD_QUERY: CRITICAL });
    seedImbalanced(h);
    h.prom.series.set(CRITICAL, [BROKER_DOWN]);

    const res = await post(payload());

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({ outcome: 'skipped', reason: 'guarded' }),
    ]);
    const { detail } = res.body.results[0];
    expect(detail).toContain('GUARD_QUERY holds');
    // How many series, never which: a guard must not become a way to read other data.
    expect(detail).toContain('guard returned 1 series');
    expect(detail).not.toContain('KafkaBrokerDown');
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
    const metrics = (await request(h.service.app).get('/metrics')).text;
    expect(metrics).toContain('pod_rebalancer_guarded_total{guard="global"} 1');
    expect(metrics).toContain('pod_rebalancer_guarded_total{guard="rule"} 0');
  });

  it('when the guard returns nothing, then the Deployment is rebalanced as without a guard', async () => {
    h = await startHarness({ GUARD_QUERY: CRITICAL });
    seedImbalanced(h);

    const res = await post(payload());

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({ outcome: 'rebalanced', reason: 'imbalanced' }),
    ]);
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
    expect(h.prom.queries.map((q) => q.query)).toContain(`count(${CRITICAL})`);
  });

  it('when the Deployment is below the threshold, then that is the reason, and the guard is not asked', async () => {
    h = await startHarness({ GUARD_QUERY: CRITICAL });
    seedDeployment(h, {
      namespace: 'payments',
      name: 'api',
      cpu: { 'api-a': 0.5, 'api-b': 0.52, 'api-c': 0.48 },
    });
    h.prom.series.set(CRITICAL, [BROKER_DOWN]);

    const res = await post(payload());

    expect(res.body.results[0]).toEqual(expect.objectContaining({ reason: 'below-threshold' }));
    expect(h.prom.queries.map((q) => q.query)).not.toContain(CRITICAL);
  });
});

describe("the alert's pod_rebalancer_guard: the rule's own guard, templated per Deployment", () => {
  it('when the guard holds for one Deployment and not for another in the same payload, then only the other is rebalanced', async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'billing');
    seedImbalanced(h, 'payments', 'shipping');
    h.prom.series.set(exampleGuardFor('billing'), [
      { labels: { consumergroup: 'billing' }, value: 10 },
    ]);

    const res = await post(
      payload([
        alertFor('billing', { pod_rebalancer_guard: exampleGuardFor('billing') }),
        alertFor('shipping', { pod_rebalancer_guard: exampleGuardFor('shipping') }),
      ]),
    );

    expect(res.status).toBe(200);
    const byDeployment = Object.fromEntries(
      res.body.results.map((r: { deployment: string }) => [r.deployment, r]),
    );
    expect(byDeployment.billing).toEqual(
      expect.objectContaining({ outcome: 'skipped', reason: 'guarded' }),
    );
    expect(byDeployment.billing.detail).toContain(
      "the alert's pod_rebalancer_guard annotation holds: guard returned 1 series",
    );
    expect(byDeployment.shipping).toEqual(
      expect.objectContaining({ outcome: 'rebalanced', reason: 'imbalanced' }),
    );
    expect(h.kube.removals.map((r) => r.name)).toEqual(['shipping-hot', 'shipping-cold']);
    // Only shipping's cooldown Lease (beside it, the action budget's, which counts every action).
    expect([...h.kube.leases.keys()].sort()).toEqual([
      'pod-rebalancer/payments.shipping',
      'pod-rebalancer/pod-rebalancer-action-budget',
    ]);
    const asked = h.prom.queries.map((q) => q.query);
    expect(asked).toEqual(
      expect.arrayContaining([
        `count(${exampleGuardFor('billing')})`,
        `count(${exampleGuardFor('shipping')})`,
      ]),
    );
    const metrics = (await request(h.service.app).get('/metrics')).text;
    expect(metrics).toContain('pod_rebalancer_guarded_total{guard="rule"} 1');
  });

  it('when GUARD_QUERY holds too, then the global guard is the one named', async () => {
    h = await startHarness({ GUARD_QUERY: CRITICAL });
    seedImbalanced(h, 'payments', 'billing');
    h.prom.series.set(CRITICAL, [BROKER_DOWN]);
    h.prom.series.set(exampleGuardFor('billing'), [
      { labels: { consumergroup: 'billing' }, value: 10 },
    ]);

    const res = await post(
      payload([alertFor('billing', { pod_rebalancer_guard: exampleGuardFor('billing') })]),
    );

    expect(res.body.results[0].detail).toContain('GUARD_QUERY holds');
  });
});

describe('a guard that cannot be evaluated never lets an action through', () => {
  it.each([
    [
      "the alert's guard has a PromQL syntax error",
      {},
      { pod_rebalancer_guard: 'sum(kafka_consumergroup_lag_sum{consumergroup="billing"' },
      "the alert's pod_rebalancer_guard annotation was rejected by Prometheus: 1:",
    ],
    [
      'GUARD_QUERY has a PromQL syntax error',
      { GUARD_QUERY: 'ALERTS{severity="critical"' },
      {},
      'GUARD_QUERY was rejected by Prometheus: 1:',
    ],
    [
      "the alert's guard is empty (a template that rendered nothing)",
      {},
      { pod_rebalancer_guard: '  ' },
      "the alert's pod_rebalancer_guard annotation is empty",
    ],
  ])(
    'when %s, then 200 invalid-policy (a retry would not fix it), nothing removed, no Lease',
    async (_when, env, annotations, detail) => {
      h = await startHarness(env as Record<string, string>);
      seedImbalanced(h, 'payments', 'billing');

      const res = await post(payload([alertFor('billing', annotations)]));

      expect(res.status).toBe(200);
      expect(res.body.results).toEqual([
        expect.objectContaining({ outcome: 'skipped', reason: 'invalid-policy' }),
      ]);
      expect(res.body.results[0].detail).toContain(detail);
      expect(h.kube.removals).toEqual([]);
      expect(h.kube.leases.size).toBe(0);
      // A broken rule is visible in the metric, whichever guard broke.
      const metrics = (await request(h.service.app).get('/metrics')).text;
      expect(metrics).toContain(
        'pod_rebalancer_invalid_policy_total{alertname="DeploymentCPUImbalance"} 1',
      );
    },
  );

  it("when the alert's guard is empty, then invalid-policy before any API call or query, even when the CPU is balanced", async () => {
    h = await startHarness();
    seedDeployment(h, {
      namespace: 'payments',
      name: 'billing',
      cpu: { 'billing-a': 0.5, 'billing-b': 0.5, 'billing-c': 0.5 },
    });

    const res = await post(payload([alertFor('billing', { pod_rebalancer_guard: '' })]));

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'invalid-policy' });
    expect(h.kube.requests).toEqual([]);
    expect(h.prom.queries).toEqual([]);
  });

  it('when Prometheus is unreachable for the guard query, then 503 with Retry-After, nothing removed, no Lease; the retry acts once the guard can be read', async () => {
    h = await startHarness({ GUARD_QUERY: CRITICAL });
    seedImbalanced(h);
    h.prom.fail({ match: /^count\(ALERTS/, destroy: true });

    const res = await post(payload());

    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body.results[0]).toEqual(
      expect.objectContaining({ outcome: 'failed', reason: 'prometheus-unavailable' }),
    );
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);

    const retry = await post(payload());

    expect(retry.status).toBe(200);
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when Prometheus answers the guard query with 503, then 503 and nothing removed', async () => {
    h = await startHarness({ GUARD_QUERY: CRITICAL });
    seedImbalanced(h);
    h.prom.fail({ match: /^count\(ALERTS/, status: 503 });

    const res = await post(payload());

    expect(res.status).toBe(503);
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
  });
});

describe('the RebalanceGuarded Event: said once per cooldown, not once per notification', () => {
  const MINUTE = 60_000;
  const COOLDOWN = 15 * MINUTE;

  /** A clock at the start of the next cooldown bucket, moved by the test. */
  function bucketClock(): Clock & { set(offsetMs: number): void } {
    const start = Math.ceil(Date.now() / COOLDOWN) * COOLDOWN;
    let now = start;
    return { now: () => new Date(now), set: (offsetMs) => (now = start + offsetMs) };
  }

  it('when notifications repeat while the guard holds, across two replicas, then one Normal Event per cooldown, each naming the guard', async () => {
    const clock = bucketClock();
    h = await startHarness({ GUARD_QUERY: CRITICAL, COOLDOWN: '15m' }, { clock });
    seedImbalanced(h);
    h.prom.series.set(CRITICAL, [BROKER_DOWN]);
    const other = h.replica('replica-b');

    const reasons: string[] = [];
    for (const [offset, app] of [
      [0, h.service.app],
      [4 * MINUTE, other.app],
      [8 * MINUTE, h.service.app],
      [COOLDOWN - 1, other.app],
    ] as const) {
      clock.set(offset);
      reasons.push((await post(payload(), app)).body.results[0].reason);
    }

    expect(reasons).toEqual(['guarded', 'guarded', 'guarded', 'guarded']);
    expect(guardedEvents()).toHaveLength(1);
    // The 409s of the repeats are "already said", not failures to record.
    expect(h.kube.requests.filter((r) => r.path.endsWith('/events'))).toHaveLength(4);
    expect(h.logs.entries.filter((e) => e.message === 'could not record the Event')).toEqual([]);
    const [event] = guardedEvents();
    expect(event).toEqual(
      expect.objectContaining({
        type: 'Normal',
        reason: 'RebalanceGuarded',
        involvedObject: expect.objectContaining({ kind: 'Deployment', name: 'api' }),
      }),
    );
    expect(event!.message).toContain(
      'Rebalance held back: GUARD_QUERY holds: guard returned 1 series',
    );

    clock.set(COOLDOWN + MINUTE);
    await post(payload(), other.app);

    expect(guardedEvents()).toHaveLength(2);
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
  });
});
