import { afterEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createLogger } from '../../src/adapters/logger.js';
import { loadConfig } from '../../src/config.js';
import { Deadline, upstreamTimeoutMs, withDeadline } from '../../src/deadline.js';
import { realAdapters } from '../../src/main.js';
import type { MetricsSource, PodCpuQuery } from '../../src/ports.js';
import { createService } from '../../src/service.js';
import { payload } from '../http/payload.js';
import {
  seedImbalanced,
  seedImbalancedMany,
  startHarness,
  TOKEN,
  type Harness,
} from '../support/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const limit = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > limit) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every request that could change the cluster: Lease writes, evictions, deletions, Events. */
function writes(harness: Harness) {
  return harness.kube.requests.filter((r) => r.method !== 'GET');
}

describe('Deadline', () => {
  let now = 0;
  const clock = () => now;

  it('when enough time is left, then the irreversible part may start, and the deadline then waits for its outcome', () => {
    now = 0;
    const deadline = new Deadline(8000, 2000, clock);
    now = 5999;

    expect(deadline.commit()).toBe(true);
    expect(deadline.abandon()).toBe(false);
  });

  it('when less than the act reserve is left, then the irreversible part may not start', () => {
    now = 0;
    const deadline = new Deadline(8000, 2000, clock);
    now = 6001;

    expect(deadline.commit()).toBe(false);
    expect(deadline.abandon()).toBe(true);
  });

  it('when the webhook already answered 503, then nothing irreversible may start, however much time is left', () => {
    now = 0;
    const deadline = new Deadline(8000, 2000, clock);

    expect(deadline.abandon()).toBe(true);
    expect(deadline.commit()).toBe(false);
  });

  it.each([
    ['no deadline: the call keeps its own limit', undefined, 10_000, 10_000],
    ['8 s left, 2 s reserve: a 10 s query gets 6 s', 8000, 10_000, 6000],
    ['8 s left: a 5 s Kubernetes call keeps 5 s', 8000, 5000, 5000],
    ['1 s left, 2 s reserve: the call fails at once (1 ms)', 1000, 10_000, 1],
  ])('upstreamTimeoutMs: %s', async (_case, left, limit, expected) => {
    now = 0;
    const deadline = left === undefined ? undefined : new Deadline(left, 2000, clock);

    const timeout = await withDeadline(deadline, async () => upstreamTimeoutMs(limit));

    expect(timeout).toBe(expected);
  });

  it('when the irreversible part started, then its calls may use all that is left (the reserve is theirs)', async () => {
    now = 0;
    const deadline = new Deadline(8000, 2000, clock);
    now = 3000;
    deadline.commit();

    expect(await withDeadline(deadline, async () => upstreamTimeoutMs(10_000))).toBe(5000);
  });
});

describe('one request deadline, through the real app', () => {
  it('when Prometheus answers only after the deadline, then the webhook answers 503 and, once the slow answer came, no Lease was written and no pod removed', async () => {
    h = await startHarness({ WEBHOOK_DEADLINE: '1s', PROMETHEUS_TIMEOUT: '10s' });
    seedImbalanced(h);
    h.prom.fail({ delayMs: 1500 });

    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload());
    await until('the slow answer', () => h!.prom.queries.length === 1);
    await until('the decision', () => h!.logs.lines.some((l) => l.includes('"decision"')));

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({
      reason: 'prometheus-unavailable',
      detail: 'Prometheus query timed out',
    });
    expect(writes(h)).toEqual([]);
    expect(h.kube.removals).toEqual([]);
  });

  it('when the CPU data arrives only after the deadline answered 503 (a source that ignores its timeout), then nothing irreversible starts, ever', async () => {
    h = await startHarness();
    seedImbalanced(h);
    const harness = h;
    let answered = false;
    // Stands in for any slow step before the act: it gives the data, but too late.
    const slow: MetricsSource = {
      async podCpu(query: PodCpuQuery) {
        await new Promise((resolve) => setTimeout(resolve, 1200));
        answered = true;
        return new Map(query.pods.map((pod) => [pod, harness.prom.cpu.get(`payments/${pod}`)!]));
      },
    };
    const env = { PROMETHEUS_URL: h.prom.url, WEBHOOK_TOKEN: TOKEN };
    const config = loadConfig(env);
    const service = createService(
      config,
      {
        ...realAdapters(config, env, h.kube.kubeConfig()),
        metrics: slow,
        logger: createLogger('info', h.logs.transport()),
      },
      { batchMetrics: false, limits: { deadlineMs: 600, actReserveMs: 100 } },
    );

    const res = await request(service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload());
    await until('the late data', () => answered);
    await until('the decision', () => h!.logs.lines.some((l) => l.includes('deadline-exceeded')));

    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/deadline/);
    expect(writes(h)).toEqual([]);
    expect(h.kube.removals).toEqual([]);
  });

  it('when the deadline leaves time to act, then the answer is the real outcome', async () => {
    h = await startHarness({ WEBHOOK_DEADLINE: '5s' });
    seedImbalanced(h);

    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload());

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when more Deployments act than may at once and the API server is slow, then one whose turn comes too close to the deadline never starts: no budget slot, no Lease, no removal', async () => {
    h = await startHarness({ WEBHOOK_DEADLINE: '5s' });
    // 16 act at once (the pipeline's bound); the 17th waits for a slot.
    const alerts = seedImbalancedMany(h, 17);
    // Each of the first 16 cooldown Lease writes takes 4.3 s (under the 5 s a Kubernetes call may
    // take): the 17th's turn comes with about 0.6 s of the 5 s left, less than the 1.25 s kept
    // for acting (a quarter of the deadline).
    h.kube.fail({
      method: 'POST',
      path: /\/namespaces\/pod-rebalancer\/leases$/,
      name: /^payments\./,
      delayMs: 4300,
      times: 16,
    });

    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload(alerts));

    const reasons = res.body.results.map((r: { reason: string }) => r.reason);
    expect(reasons.filter((r: string) => r === 'imbalanced')).toHaveLength(16);
    const late = res.body.results.find((r: { reason: string }) => r.reason === 'deadline-exceeded');
    expect(late).toMatchObject({ outcome: 'failed' });
    expect(res.status).toBe(503);
    expect(h.kube.removals).toHaveLength(32);
    expect(h.kube.removals.some((r) => r.name.startsWith(`${late.deployment}-`))).toBe(false);
    expect(h.kube.leases.has(`pod-rebalancer/payments.${late.deployment}`)).toBe(false);
    const budget = h.kube.leases.get('pod-rebalancer/pod-rebalancer-action-budget');
    expect(JSON.parse(budget?.metadata.annotations['pod-rebalancer.io/actions'])).toHaveLength(16);
  });

  it('when a Deployment waits in the budget queue until too close to the deadline, then it never starts: no budget slot, no Lease, no removal', async () => {
    h = await startHarness({ WEBHOOK_DEADLINE: '5s' });
    const alerts = seedImbalancedMany(h, 2);
    // The first budget write takes 4.3 s: the second Deployment, queued behind it for the
    // budget, gets its turn with about 0.7 s left, less than the 1.25 s kept for acting.
    h.kube.fail({
      method: 'POST',
      path: /\/namespaces\/pod-rebalancer\/leases$/,
      name: /^pod-rebalancer-action-budget$/,
      delayMs: 4300,
    });

    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload(alerts));

    const late = res.body.results.find((r: { reason: string }) => r.reason === 'deadline-exceeded');
    expect(late).toMatchObject({ outcome: 'failed' });
    expect(
      res.body.results.filter((r: { reason: string }) => r.reason === 'imbalanced'),
    ).toHaveLength(1);
    expect(h.kube.removals).toHaveLength(2);
    expect(h.kube.removals.some((r) => r.name.startsWith(`${late.deployment}-`))).toBe(false);
    expect(h.kube.leases.has(`pod-rebalancer/payments.${late.deployment}`)).toBe(false);
    const budget = h.kube.leases.get('pod-rebalancer/pod-rebalancer-action-budget');
    expect(JSON.parse(budget?.metadata.annotations['pod-rebalancer.io/actions'])).toHaveLength(1);
  });
});
