import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Service } from '../../src/service.js';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

// The cache may say skip; only the API server may say act: before the first write for a
// Deployment, its copy on the API server is read and checked again.

let h: Harness;
afterEach(() => h?.stop());

const post = (service: Service) =>
  postWebhook(
    service.app,
    payload([
      {
        labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' },
        fingerprint: 'api',
      },
    ]),
  );

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** Writes of any kind: Leases (cooldown, budget), evictions, Events. */
const writes = (h: Harness) =>
  h.kube.requests.filter((r) => r.method !== 'GET' && !r.path.endsWith('/events'));

/** The Deployment as the API server has it, changed by `change` (the watch hears nothing). */
function changeOnApiServer(
  h: Harness,
  change: (deployment: { metadata: Record<string, unknown> & { annotations: object } }) => void,
): void {
  const deployment = structuredClone(h.kube.deployments.get('payments/api')!) as {
    metadata: Record<string, unknown> & { annotations: Record<string, string> };
  };
  change(deployment);
  h.kube.addDeployment(deployment);
}

async function silentCache(): Promise<void> {
  h = await startHarness({}, { watchCaches: true });
  seedImbalanced(h);
  await until(
    async () => (await request(h.service.app).get('/readyz')).status === 200,
    'the caches synced',
  );
  // The control-plane node serving the watch died without a RST: the stream stays open, silent.
  h.kube.silenceWatches();
}

describe('before acting, the Deployment is read from the API server', () => {
  it('when the Deployment is opted out through the API server while the watch is silent, then no pod is removed and nothing is written', async () => {
    await silentCache();
    changeOnApiServer(h, (d) => {
      (d.metadata.annotations as Record<string, string>)['pod-rebalancer.io/enabled'] = 'false';
    });

    const res = await post(h.service);

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'opted-out' });
    expect(h.kube.removals).toEqual([]);
    expect(writes(h)).toEqual([]);
  });

  it('when a rollout starts while the watch is silent, then rollout-in-progress and nothing is removed', async () => {
    await silentCache();
    changeOnApiServer(h, (d) => (d.metadata.generation = 3));

    const res = await post(h.service);

    expect(res.body.results[0]).toMatchObject({ reason: 'rollout-in-progress' });
    expect(h.kube.removals).toEqual([]);
  });

  type Change = Parameters<typeof changeOnApiServer>[1];
  it.each<[string, Change]>([
    ['was deleted and created again (another uid)', (d) => (d.metadata.uid = 'uid-deploy-api-2')],
    [
      // apps/v1 refuses to change a selector: a copy that differs anyway (a cache or an API
      // server gone wrong) stops the action instead of being trusted.
      'has another selector on the API server than in the cache',
      (d) => {
        (d as unknown as { spec: { selector: object } }).spec.selector = {
          matchLabels: { app: 'api', track: 'canary' },
        };
      },
    ],
  ])(
    'when the Deployment %s while the watch is silent, then the one measured is gone (its pods may not be the ones measured): not-found, nothing written',
    async (_what, change) => {
      await silentCache();
      changeOnApiServer(h, change);

      const res = await post(h.service);

      expect(res.body.results[0]).toMatchObject({
        outcome: 'skipped',
        reason: 'not-found',
        detail: expect.stringContaining('uid or selector changed'),
      });
      expect(writes(h)).toEqual([]);
    },
  );

  it('when the cache and the API server agree, then it acts, with one read of the Deployment from the API server', async () => {
    await silentCache();

    const res = await post(h.service);

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    const reads = h.kube.requests.filter(
      (r) => r.method === 'GET' && r.path === '/apis/apps/v1/namespaces/payments/deployments/api',
    );
    expect(reads).toHaveLength(1);
  });
});
