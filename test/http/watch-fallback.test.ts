import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { WatchTiming } from '../../src/adapters/watch-cache.js';
import {
  type Harness,
  postWebhook,
  seedAutoscaler,
  seedImbalanced,
  startHarness,
} from '../support/harness.js';
import { payload } from './payload.js';

// The watch caches behave like client-go informers: a silent stream is dropped and resumed, a
// refused or failing watch falls back to periodic paged lists, and the service stays ready.

let h: Harness;
afterEach(() => h?.stop());

const alertFor = (deployment: string) => ({
  labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
  fingerprint: deployment,
});

const outcomeFor = async (deployment: string) =>
  (await postWebhook(h.service.app, payload([alertFor(deployment)]))).body.results[0] as {
    outcome: string;
    reason: string;
  };

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const ready = async () => (await request(h.service.app).get('/readyz')).status === 200;
const metrics = async () => (await request(h.service.app).get('/metrics')).text;
const deploymentWatches = () =>
  h.kube.requests.filter(
    (r) => r.path === '/apis/apps/v1/deployments' && r.query.includes('watch=true'),
  );

async function start(timing: Partial<WatchTiming>): Promise<void> {
  h = await startHarness({}, { watchCaches: true, watchTiming: { firstRetryMs: 20, ...timing } });
  seedImbalanced(h, 'payments', 'api');
}

describe('watches like informers', () => {
  it('when the list is done but the watch was not accepted yet, then the cache is not synced; once it is, it is', async () => {
    await start({});
    // The first list of Deployments, then the first watch, each wait 1.5 s for an answer.
    h.kube.fail({
      method: 'GET',
      path: /^\/apis\/apps\/v1\/deployments$/,
      delayMs: 1500,
      times: 2,
    });

    await until(() => deploymentWatches().length >= 1, 'the list was done and a watch asked for');

    expect(await ready()).toBe(false);
    await until(ready, 'the watch was accepted');
  });

  it('when a watch is opened, then it asks for bookmarks and a server-side timeout of 5 to 10 minutes', async () => {
    await start({});
    await until(ready, 'synced');

    const query = new URLSearchParams(deploymentWatches()[0]!.query);
    expect(query.get('allowWatchBookmarks')).toBe('true');
    const timeout = Number(query.get('timeoutSeconds'));
    expect(timeout).toBeGreaterThanOrEqual(300);
    expect(timeout).toBeLessThan(600);
  });

  it('when the watch goes silent past the liveness limit (a half-open connection), then it is dropped and resumed, and a change made meanwhile is seen', async () => {
    await start({ livenessMs: 300 });
    await until(ready, 'synced');
    h.kube.silenceWatches();
    seedImbalanced(h, 'payments', 'web');
    expect(await outcomeFor('web')).toMatchObject({ reason: 'not-found' });

    h.kube.hearWatches();

    await until(async () => (await outcomeFor('web')).outcome === 'rebalanced', 'web is seen');
    const lists = h.kube.collectionLists.filter((l) => l.path === 'deployments');
    expect(lists).toHaveLength(1);
  });

  it('when RBAC grants list but not watch (403), then the cache lists periodically: ready, the metric says polling, and changes are seen at the next list', async () => {
    h = await startHarness(
      {},
      { watchCaches: true, watchTiming: { firstRetryMs: 20, pollIntervalMs: 100 } },
    );
    h.kube.refuseWatches = 403;
    seedImbalanced(h, 'payments', 'api');

    await until(ready, 'ready without a watch');
    expect(await metrics()).toContain('pod_rebalancer_watch_polling{cache="deployments"} 1');
    seedImbalanced(h, 'payments', 'web');

    await until(async () => (await outcomeFor('web')).outcome === 'rebalanced', 'web is seen');
    // One refused watch per cache, then lists only (the watch is tried again after 10 minutes).
    expect(deploymentWatches()).toHaveLength(1);
  });

  it('when RBAC grants list but not watch of HorizontalPodAutoscalers (403), then their cache lists periodically too: ready, the metric says polling for autoscalers, and an HPA that starts scaling is seen at the next list', async () => {
    h = await startHarness(
      {},
      { watchCaches: true, watchTiming: { firstRetryMs: 20, pollIntervalMs: 100 } },
    );
    h.kube.refuseWatches = 403;
    seedImbalanced(h, 'payments', 'api');

    await until(ready, 'ready without a watch');
    await until(
      async () => (await metrics()).includes('pod_rebalancer_watch_polling{cache="autoscalers"} 1'),
      'the HPA cache says polling',
    );
    expect(await ready()).toBe(true);
    const hpaLists = () =>
      h.kube.collectionLists.filter((l) => l.path === 'horizontalpodautoscalers').length;
    const before = hpaLists();
    seedAutoscaler(h, {
      namespace: 'payments',
      name: 'api-hpa',
      target: 'api',
      desiredReplicas: 7,
      currentReplicas: 5,
    });

    // A list that began before the HPA was created may not hold it: the one after does.
    await until(() => hpaLists() >= before + 2, 'listed again');
    expect(await outcomeFor('api')).toMatchObject({ outcome: 'skipped', reason: 'scaling' });
    const hpaWatches = h.kube.requests.filter(
      (r) => r.path.includes('horizontalpodautoscalers') && r.query.includes('watch=true'),
    );
    expect(hpaWatches).toHaveLength(1);
    expect(h.kube.removals).toEqual([]);
  });

  it('when the watch keeps failing (500), then it backs off and, after a few failures in a row, falls back to periodic lists and stays ready', async () => {
    h = await startHarness(
      {},
      {
        watchCaches: true,
        watchTiming: { firstRetryMs: 20, failuresBeforePolling: 4, pollIntervalMs: 100 },
      },
    );
    h.kube.refuseWatches = 500;
    seedImbalanced(h, 'payments', 'api');

    await until(
      async () => (await metrics()).includes('pod_rebalancer_watch_polling{cache="deployments"} 1'),
      'polling',
    );

    await until(ready, 'ready while polling');
    expect(deploymentWatches()).toHaveLength(4);
  });

  it('when the watch is accepted again after polling, then the metric says watching', async () => {
    h = await startHarness(
      {},
      {
        watchCaches: true,
        watchTiming: { firstRetryMs: 20, pollIntervalMs: 50, rewatchAfterMs: 200 },
      },
    );
    h.kube.refuseWatches = 403;
    await until(
      async () => (await metrics()).includes('pod_rebalancer_watch_polling{cache="deployments"} 1'),
      'polling',
    );

    h.kube.refuseWatches = undefined;

    await until(
      async () => (await metrics()).includes('pod_rebalancer_watch_polling{cache="deployments"} 0'),
      'watching again',
    );
  });
});

describe('big clusters: every list is paged', () => {
  it('when the Deployments are listed, then page by page (limit and continue), and an expired continue token (410) restarts the list', async () => {
    await start({ pageSize: 2 });
    seedImbalanced(h, 'payments', 'web');
    seedImbalanced(h, 'payments', 'worker');
    h.kube.expireContinues = 1;

    await until(ready, 'synced');

    for (const name of ['api', 'web', 'worker']) {
      expect(await outcomeFor(name)).toMatchObject({ outcome: 'rebalanced' });
    }
    const lists = h.kube.collectionLists.filter((l) => l.path === 'deployments');
    expect(lists.every((l) => l.limit === 2)).toBe(true);
    // First pass: page 1, page 2 (410); second pass: pages 1, 2.
    expect(lists.map((l) => l.continued)).toEqual([false, true, false, true]);
  });

  it('when the HorizontalPodAutoscalers are listed, then page by page too, and one on the last page holds the action back', async () => {
    await start({ pageSize: 2 });
    for (const name of ['web', 'worker', 'api']) {
      seedAutoscaler(h, {
        namespace: 'payments',
        name: `${name}-hpa`,
        target: name,
        desiredReplicas: name === 'api' ? 7 : 3,
        currentReplicas: name === 'api' ? 5 : 3,
      });
    }

    await until(ready, 'synced');

    expect(await outcomeFor('api')).toMatchObject({ outcome: 'skipped', reason: 'scaling' });
    const lists = h.kube.collectionLists.filter((l) => l.path === 'horizontalpodautoscalers');
    expect(lists.map((l) => [l.limit, l.continued])).toEqual([
      [2, false],
      [2, true],
    ]);
  });

  it('when the watch history is compacted (410 Gone), then the relist is paged too', async () => {
    await start({ pageSize: 1 });
    seedImbalanced(h, 'payments', 'web');
    await until(ready, 'synced');
    const before = h.kube.collectionLists.filter((l) => l.path === 'deployments').length;

    h.kube.expireWatches();

    await until(
      () => h.kube.collectionLists.filter((l) => l.path === 'deployments').length >= before + 2,
      'relisted',
    );
    const lists = h.kube.collectionLists.filter((l) => l.path === 'deployments');
    expect(lists.every((l) => l.limit === 1)).toBe(true);
  });
});
