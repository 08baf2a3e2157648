import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { DeploymentCache } from '../../src/adapters/caches.js';
import { createKubeApis } from '../../src/adapters/kube-api.js';
import { createLogger } from '../../src/adapters/logger.js';
import type { WatchTiming } from '../../src/adapters/watch-cache.js';
import { seedFatDeployments } from '../support/fake-kube.js';
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

/** Milliseconds between one Deployment watch request and the next. */
function watchGaps(): number[] {
  const watches = deploymentWatches();
  return watches.slice(1).map((w, i) => w.at - watches[i]!.at);
}

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

  it('when only bookmarks arrive, more often than the liveness limit, then the stream counts as alive: it is not dropped, and it is once they stop', async () => {
    await start({ livenessMs: 1000 });
    await until(ready, 'synced');

    // 3 s of bookmarks every 100 ms and nothing else: three times the liveness limit.
    for (let i = 0; i < 30; i++) {
      h.kube.bookmark();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(deploymentWatches()).toHaveLength(1);

    await until(() => deploymentWatches().length === 2, 'the silent stream is dropped');
  });

  it('when watches keep failing, then each wait is twice the one before', async () => {
    await start({ firstRetryMs: 50, maxRetryMs: 60_000, failuresBeforePolling: 100 });
    h.kube.refuseWatches = 500;

    await until(() => deploymentWatches().length >= 5, 'five watches were refused');

    const [first, second, third, fourth] = watchGaps();
    // Timers never fire early; a busy machine only makes the waits longer.
    expect(first).toBeGreaterThanOrEqual(49);
    expect(second).toBeGreaterThanOrEqual(99);
    expect(third).toBeGreaterThanOrEqual(199);
    expect(fourth).toBeGreaterThanOrEqual(399);
  });

  it('when a watch is accepted but ends before it was healthy, then the backoff goes on growing; after a healthy stream it starts over', async () => {
    await start({
      firstRetryMs: 50,
      maxRetryMs: 60_000,
      healthyAfterMs: 300,
      failuresBeforePolling: 100,
    });
    h.kube.refuseWatches = 500;
    // Four refusals: waits of 50, 100, 200 and 400 ms, so the next wait is 800 ms.
    await until(() => deploymentWatches().length >= 4, 'four watches were refused');
    h.kube.refuseWatches = undefined;
    await until(() => deploymentWatches().length >= 5, 'a watch was accepted');

    // Ended by the server at once: not healthy, so the next watch waits the grown backoff.
    h.kube.endWatches();
    await until(() => deploymentWatches().length >= 6, 'watched again');
    expect(watchGaps()[4]).toBeGreaterThanOrEqual(799);

    // Open past healthyAfterMs, then ended; the next watch is refused: the wait is the first one
    // again (50 ms), not the 1.6 s the backoff had grown to.
    await new Promise((resolve) => setTimeout(resolve, 500));
    h.kube.refuseWatches = 500;
    h.kube.endWatches();
    await until(() => deploymentWatches().length >= 8, 'refused once more, then tried again');
    expect(watchGaps()[6]).toBeLessThan(1000);
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
    // A failed list would be tried again only after 5 s.
    await start({ pageSize: 2, firstRetryMs: 5000 });
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
    // Restarted at once, within the list, as the API server asks: not a failed list retried
    // after the backoff.
    const [, expired, restarted] = h.kube.requests.filter(
      (r) => r.path === '/apis/apps/v1/deployments' && !r.query.includes('watch=true'),
    );
    expect(restarted!.at - expired!.at).toBeLessThan(2500);
  });

  it('when Deployments of 10 KB are listed, then the cache keeps only what the service reads of each, under 1 KB', async () => {
    h = await startHarness({});
    seedFatDeployments(h.kube, 20);
    const kubeConfig = h.kube.kubeConfig();
    const cache = new DeploymentCache(kubeConfig, createKubeApis(kubeConfig, 5000), undefined, {
      logger: createLogger('error'),
      timing: { pageSize: 5 },
    }).start();
    try {
      await until(() => cache.isSynced(), 'synced');

      for (let i = 0; i < 20; i++) {
        const namespace = `team-${i % 50}`;
        const listed = JSON.stringify(h.kube.deployments.get(`${namespace}/service-${i}`));
        const kept = cache.get(namespace, `service-${i}`);
        expect(listed.length).toBeGreaterThan(9000);
        expect(kept?.metadata?.uid).toBe(`uid-fat-${i}`);
        expect(JSON.stringify(kept).length).toBeLessThan(1000);
      }
    } finally {
      await cache.stop();
    }
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
