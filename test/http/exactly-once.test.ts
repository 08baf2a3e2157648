import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const post = (app: Harness['service']['app'], body: unknown = payload()) => postWebhook(app, body);

describe('nothing is done twice', () => {
  it('when 25 identical firing notifications arrive at once, then exactly 2 pods are removed', async () => {
    h = await startHarness();
    seedImbalanced(h);

    const responses = await Promise.all(Array.from({ length: 25 }, () => post(h.service.app)));

    expect(responses.map((r) => r.status)).toEqual(Array(25).fill(200));
    const outcomes = responses.map(
      (r) => `${r.body.results[0].outcome}/${r.body.results[0].reason}`,
    );
    expect(outcomes.filter((o) => o === 'rebalanced/imbalanced')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'skipped/cooldown')).toHaveLength(24);
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when two replicas receive the same alert at once, then the Lease lets exactly one act', async () => {
    h = await startHarness();
    seedImbalanced(h);
    const replicaB = h.replica('replica-b');

    const [a, b] = await Promise.all([post(h.service.app), post(replicaB.app)]);

    const outcomes = [a.body.results[0].outcome, b.body.results[0].outcome].sort();
    expect(outcomes).toEqual(['rebalanced', 'skipped']);
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when both replicas race past the cooldown check, then the loser sees 409 on the Lease and removes nothing', async () => {
    h = await startHarness();
    seedImbalanced(h);
    const replicaB = h.replica('replica-b');
    // Creating the Lease is slow, so both replicas have read "no Lease" before either creates it.
    h.kube.fail({
      method: 'POST',
      path: /\/namespaces\/pod-rebalancer\/leases$/,
      name: /^payments\.api$/,
      delayMs: 300,
      times: 2,
    });

    const [a, b] = await Promise.all([post(h.service.app), post(replicaB.app)]);

    const results = [a.body.results[0], b.body.results[0]];
    expect(results.map((r) => r.outcome).sort()).toEqual(['rebalanced', 'skipped']);
    expect(results.find((r) => r.outcome === 'skipped')).toMatchObject({
      reason: 'cooldown',
      detail: expect.stringMatching(/took the Lease first/),
    });
    expect(
      h.kube.requests.filter(
        (r) =>
          r.method === 'POST' &&
          r.path.endsWith('/namespaces/pod-rebalancer/leases') &&
          (r.body as { metadata?: { name?: string } }).metadata?.name === 'payments.api',
      ),
    ).toHaveLength(2);
    expect(h.kube.removals).toHaveLength(2);
  });
});

describe('when an upstream is unreachable: 503, nothing removed, and the retry is safe', () => {
  it('when Prometheus is down, then 503 with Retry-After, nothing removed, no Lease, and the process still serves', async () => {
    h = await startHarness();
    seedImbalanced(h);
    await h.prom.stop();

    const res = await post(h.service.app);

    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'prometheus-unavailable',
    });
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
    expect((await request(h.service.app).get('/healthz')).status).toBe(200);
  });

  it('when Prometheus answers 503, then the webhook answers 503 so Alertmanager retries', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.fail({
      status: 503,
      rawBody: '{"status":"error","errorType":"unavailable","error":"overloaded"}',
    });

    const res = await post(h.service.app);

    expect(res.status).toBe(503);
    expect(h.kube.removals).toEqual([]);
  });

  it('when the Kubernetes API is down, then 503 and nothing removed', async () => {
    h = await startHarness();
    seedImbalanced(h);
    await h.kube.stop();

    const res = await post(h.service.app);

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'kubernetes-unavailable',
    });
  });

  it('when a payload half succeeds and half gets 503, then the retry acts on the rest and never twice on the first', async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'shop', 'web');
    h.prom.fail({ status: 500, match: /namespace="shop"/ });
    const body = payload([
      { labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' } },
      { labels: { alertname: 'DeploymentCPUImbalance', namespace: 'shop', deployment: 'web' } },
    ]);

    const first = await post(h.service.app, body);
    const retry = await post(h.service.app, body);

    expect(first.status).toBe(503);
    expect(first.body.results.map((r: { outcome: string }) => r.outcome)).toEqual([
      'rebalanced',
      'failed',
    ]);
    expect(retry.status).toBe(200);
    expect(retry.body.results.map((r: { reason: string }) => r.reason)).toEqual([
      'cooldown',
      'imbalanced',
    ]);
    const removedFrom = h.kube.removals.map((r) => r.namespace);
    expect(removedFrom.filter((ns) => ns === 'payments')).toHaveLength(2);
    expect(removedFrom.filter((ns) => ns === 'shop')).toHaveLength(2);
  });

  it('when Prometheus is slower than PROMETHEUS_TIMEOUT, then 503 within the timeout and a margin', async () => {
    h = await startHarness({ PROMETHEUS_TIMEOUT: '300ms' });
    seedImbalanced(h);
    h.prom.fail({ delayMs: 3000 });
    const started = Date.now();

    const res = await post(h.service.app);

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({
      reason: 'prometheus-unavailable',
      detail: expect.stringMatching(/timed out/),
    });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(h.kube.removals).toEqual([]);
  });
});
