import { afterEach, describe, expect, it } from '@jest/globals';
import {
  type Harness,
  postWebhook,
  seedDeployment,
  seedImbalanced,
  startHarness,
} from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const alertFor = (namespace: string, deployment: string) => ({
  labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment },
  fingerprint: `${namespace}-${deployment}`,
});

const post = (alerts: { labels: Record<string, string>; fingerprint: string }[]) =>
  postWebhook(h.service.app, payload(alerts));

const podLists = () =>
  h.kube.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/pods'));

describe('a namespace is verified together', () => {
  it('when a payload names three Deployments in each of two namespaces, then each namespace costs one pod list and one Prometheus query, and every Deployment is acted on', async () => {
    h = await startHarness();
    const alerts = [];
    for (const namespace of ['payments', 'shop']) {
      for (const name of ['api', 'web', 'worker']) {
        seedImbalanced(h, namespace, name);
        alerts.push(alertFor(namespace, name));
      }
    }

    const res = await post(alerts);

    expect(res.body.results.map((r: { outcome: string }) => r.outcome)).toEqual(
      Array(6).fill('rebalanced'),
    );
    expect(
      podLists()
        .map((r) => r.path)
        .sort(),
    ).toEqual(['/api/v1/namespaces/payments/pods', '/api/v1/namespaces/shop/pods']);
    expect(new URLSearchParams(podLists()[0]!.query).get('labelSelector')).toBe(
      'app in (api,web,worker)',
    );
    expect(h.prom.queries).toHaveLength(2);
    expect(h.kube.removals).toHaveLength(12);
  });

  it('when some Deployments of the namespace stop at an earlier gate (cooldown, not found), then the rest are verified without waiting for them', async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'web');
    await post([alertFor('payments', 'api')]);
    h.prom.queries.length = 0;
    h.kube.requests.length = 0;

    const res = await post([
      alertFor('payments', 'api'),
      alertFor('payments', 'missing'),
      alertFor('payments', 'web'),
    ]);

    expect(res.body.results.map((r: { reason: string }) => r.reason)).toEqual([
      'cooldown',
      'not-found',
      'imbalanced',
    ]);
    expect(podLists()).toHaveLength(1);
    expect(h.prom.queries).toHaveLength(1);
    // Only the pods of the Deployment verified were asked about.
    expect(h.prom.queries[0]!.query).toContain('web-hot');
    expect(h.prom.queries[0]!.query).not.toContain('api-hot');
  });

  it("when one namespace's pod list fails, then its Deployments fail as retryable and the other namespace is still acted on", async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'web');
    seedImbalanced(h, 'shop', 'api');
    h.kube.fail({ method: 'GET', path: /\/namespaces\/payments\/pods$/, status: 500 });

    const res = await post([
      alertFor('payments', 'api'),
      alertFor('payments', 'web'),
      alertFor('shop', 'api'),
    ]);

    expect(res.status).toBe(503);
    expect(h.kube.removals.map((r) => r.namespace)).toEqual(['shop', 'shop']);
  });
});

describe('pods are listed page by page', () => {
  // Two camps of hundreds: a spread two restarts cannot fix. These tests are about paging, so
  // the improvement gate is off (test/core/improvement.test.ts is about the gate).
  const NO_GATE = { MIN_IMPROVEMENT: '0%' };

  function seedLarge(pods: number) {
    const cpu: Record<string, number> = {};
    // Half busy, half idle: a stddev of about 0.4 cores, above the 0.3 threshold.
    for (let i = 0; i < pods; i++) cpu[`big-${String(i).padStart(4, '0')}`] = i % 2 ? 0.9 : 0.1;
    cpu['big-hot'] = 3;
    cpu['big-cold'] = 0.01;
    seedDeployment(h, { namespace: 'data', name: 'big', cpu });
  }

  it('when a Deployment has 1,200 pods, then they are listed in pages of 500 and the hottest and the coldest are removed', async () => {
    h = await startHarness(NO_GATE);
    seedLarge(1200);

    const res = await post([alertFor('data', 'big')]);

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(podLists()).toHaveLength(3);
    expect(podLists().every((r) => r.query.includes('limit=500'))).toBe(true);
    expect(podLists().filter((r) => r.query.includes('continue='))).toHaveLength(2);
    expect(h.kube.removals.map((r) => r.name).sort()).toEqual(['big-cold', 'big-hot']);
  });

  it('when the continue token has expired (410), then the list starts over once and the decision uses every pod', async () => {
    h = await startHarness(NO_GATE);
    seedLarge(700);
    h.kube.expireContinues = 1;

    const res = await post([alertFor('data', 'big')]);

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    // First page, expired second page, then the whole list again.
    expect(podLists()).toHaveLength(4);
    expect(h.kube.removals.map((r) => r.name).sort()).toEqual(['big-cold', 'big-hot']);
  });
});
