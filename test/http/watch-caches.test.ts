import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Service } from '../../src/service.js';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const alertFor = (deployment: string) => ({
  labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
  fingerprint: deployment,
});

const post = (service: Service, deployment = 'api') =>
  postWebhook(service.app, payload([alertFor(deployment)]));

/** Waits, a bounded number of times, for a condition that depends on a watch catching up. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const ready = async (service: Service) =>
  (await request(service.app).get('/readyz')).status === 200;

/** Calls that read state (not watches, not pod lists, not writes). */
const stateReads = (h: Harness) =>
  h.kube.requests.filter(
    (r) =>
      r.method === 'GET' &&
      !r.query.includes('watch=true') &&
      (r.path.includes('/deployments') || r.path.includes('/leases')),
  );

describe('Deployments and Leases are read from watch caches', () => {
  it('when the caches have not listed yet, then /readyz says not ready; once synced, ready', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h);
    h.kube.fail({ method: 'GET', path: /^\/apis\/apps\/v1\/deployments$/, delayMs: 400 });
    const replica = h.replica('replica-slow');

    expect((await request(replica.app).get('/readyz')).status).toBe(503);
    await until(() => ready(replica), 'the slow replica is ready');
  });

  it('when a storm of notifications arrives inside the cooldown, then it is answered from memory: no read reaches the API server', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h);
    await until(() => ready(h.service), 'synced');
    expect((await post(h.service)).body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    const before = stateReads(h).length;

    for (let i = 0; i < 20; i++) {
      expect((await post(h.service)).body.results[0]).toMatchObject({ reason: 'cooldown' });
    }

    expect(stateReads(h).length).toBe(before);
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when another replica acted and our Lease watch lags behind, then our stale cache ends in a cooldown at the compare-and-swap, never a second action', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h);
    const b = h.replica('replica-b');
    await until(async () => (await ready(h.service)) && ready(b), 'both synced');
    h.kube.holdWatches();

    expect((await post(h.service)).body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    // The replacements are as unevenly loaded: only the Lease can stop replica b.
    seedImbalanced(h);
    const late = await post(b);

    expect(late.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'cooldown',
      detail: 'another request or replica took the Lease first',
    });
    expect(h.kube.removals).toHaveLength(2);

    h.kube.releaseWatches();
    const queries = h.prom.queries.length;
    await until(
      async () => (await post(b)).body.results[0].detail?.startsWith('in cooldown until'),
      "replica b's watch catches up",
    );
    expect(h.prom.queries.length).toBe(queries);
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when listing and watching Deployments are both refused (403), then the cache stops answering: not ready, and a change made meanwhile is read fresh', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h, 'payments', 'api');
    await until(() => ready(h.service), 'synced');
    h.kube.fail({
      method: 'GET',
      path: /^\/apis\/apps\/v1\/deployments$/,
      status: 403,
      times: 1000,
    });
    h.kube.endWatches();
    // Opted out while the cache cannot hear about it.
    const api = h.kube.deployments.get('payments/api')!;
    api.metadata.annotations = {
      ...api.metadata.annotations,
      'pod-rebalancer.io/enabled': 'false',
    };
    h.kube.addDeployment(api);

    await until(async () => !(await ready(h.service)), 'not ready while the watch fails');
    const res = await post(h.service);

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'opted-out' });
    expect(h.kube.removals).toEqual([]);
  });

  it('when the watch history is compacted (410 Gone), then the cache lists again and sees what changed meanwhile', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h, 'payments', 'api');
    await until(() => ready(h.service), 'synced');
    const lists = () =>
      h.kube.requests.filter(
        (r) => r.path === '/apis/apps/v1/deployments' && !r.query.includes('watch=true'),
      ).length;
    expect(lists()).toBe(1);

    h.kube.expireWatches();
    h.kube.deleteDeployment('payments', 'api');
    seedImbalanced(h, 'payments', 'web');

    await until(() => lists() === 2 && h.kube.openWatches >= 2, 'the cache listed again');
    await until(
      async () => (await post(h.service, 'web')).body.results[0].outcome === 'rebalanced',
      'the new Deployment is seen',
    );
    expect((await post(h.service, 'api')).body.results[0]).toMatchObject({ reason: 'not-found' });
    const watches = h.kube.requests.filter((r) => r.query.includes('watch=true'));
    expect(watches.every((r) => r.query.includes('allowWatchBookmarks=true'))).toBe(true);
  });

  it('when the API server sends bookmarks, then the watch moves on without a relist', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h, 'payments', 'api');
    await until(() => ready(h.service), 'synced');

    h.kube.bookmark();
    seedImbalanced(h, 'payments', 'web');

    await until(
      async () => (await post(h.service, 'web')).body.results[0].outcome === 'rebalanced',
      'the new Deployment is seen',
    );
    const lists = h.kube.requests.filter(
      (r) => r.path === '/apis/apps/v1/deployments' && !r.query.includes('watch=true'),
    );
    expect(lists).toHaveLength(1);
  });
});
