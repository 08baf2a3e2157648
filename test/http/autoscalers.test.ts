import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  postWebhook,
  seedAutoscaler,
  seedImbalanced,
  startHarness,
  type AutoscalerSeed,
  type Harness,
} from '../support/harness.js';
import { payload } from './payload.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

let h: Harness;
afterEach(() => h?.stop());

const firing = payload([
  {
    labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' },
    fingerprint: 'api',
  },
]);

/** payments/api-hpa, scaling payments/api, steady at 5 replicas since a day, unless overridden. */
function seedApiAutoscaler(overrides: Partial<AutoscalerSeed> = {}): void {
  seedAutoscaler(h, {
    namespace: 'payments',
    name: 'api-hpa',
    target: 'api',
    desiredReplicas: 5,
    currentReplicas: 5,
    lastScaledAgoMs: DAY,
    ...overrides,
  });
}

async function postFiring() {
  const response = await postWebhook(h.service.app, firing);
  expect(response.status).toBe(200);
  return response.body.results[0];
}

describe('a HorizontalPodAutoscaler that moves the Deployment holds the action back', () => {
  it('when an HPA targeting the Deployment wants 7 replicas where 5 run, then skipped scaling, naming the HPA and the counts, and nothing removed', async () => {
    h = await startHarness();
    seedImbalanced(h);
    seedApiAutoscaler({ desiredReplicas: 7 });

    expect(await postFiring()).toMatchObject({
      outcome: 'skipped',
      reason: 'scaling',
      detail: 'HorizontalPodAutoscaler api-hpa is scaling (7 desired, 5 current replicas)',
    });
    expect(h.kube.removals).toEqual([]);
    // Decided before any write and any CPU query.
    expect(h.kube.leases.size).toBe(0);
    expect(h.prom.queries).toHaveLength(0);
  });

  it('when the HPA scaled the Deployment 3 minutes ago (inside COOLDOWN 15m), then skipped scaling, saying when', async () => {
    h = await startHarness();
    seedImbalanced(h);
    seedApiAutoscaler({ lastScaledAgoMs: 3 * MINUTE });

    const result = await postFiring();

    expect(result).toMatchObject({ outcome: 'skipped', reason: 'scaling' });
    expect(result.detail).toMatch(
      /^HorizontalPodAutoscaler api-hpa scaled the Deployment at \S+Z, within COOLDOWN 15m \(5 desired, 5 current replicas\)$/,
    );
    expect(h.kube.removals).toEqual([]);
  });

  it('when the HPA has been quiet for a day at the replica count it wants, then the service acts', async () => {
    h = await startHarness();
    seedImbalanced(h);
    seedApiAutoscaler();

    expect(await postFiring()).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals.map((r) => r.name).sort()).toEqual(['api-cold', 'api-hot']);
  });

  it('when the scaling HPA targets another Deployment of the namespace, then the service acts on this one', async () => {
    h = await startHarness();
    seedImbalanced(h);
    seedApiAutoscaler({
      name: 'worker-hpa',
      target: 'worker',
      desiredReplicas: 9,
      currentReplicas: 3,
    });
    // A namesake in another namespace scales its own Deployment, not this one.
    seedApiAutoscaler({ namespace: 'shop', name: 'api', desiredReplicas: 9, currentReplicas: 3 });

    expect(await postFiring()).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when the HPAs are read through the watch cache, then one that starts scaling after the sync is seen without a read of the API server', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h);
    await until(
      async () => (await request(h.service.app).get('/readyz')).status === 200,
      'the caches synced',
    );
    seedApiAutoscaler({ desiredReplicas: 3, lastScaledAgoMs: undefined });
    await until(async () => (await postFiring()).reason === 'scaling', 'the watch brought the HPA');

    const lists = h.kube.requests.filter(
      (r) => r.path.includes('horizontalpodautoscalers') && !r.query.includes('watch=true'),
    );
    // The cache's own list at start, cluster-wide; never a per-alert read.
    expect(lists.map((r) => r.path)).toEqual(['/apis/autoscaling/v2/horizontalpodautoscalers']);
    expect(h.kube.removals).toEqual([]);
  });

  it('when the HPAs are read through the watch cache, then a scaling namesake in another namespace does not hold the action back, and a deleted HPA no longer does', async () => {
    h = await startHarness({}, { watchCaches: true });
    seedImbalanced(h);
    seedApiAutoscaler({ namespace: 'shop', name: 'api', desiredReplicas: 9, currentReplicas: 3 });
    seedApiAutoscaler({ desiredReplicas: 7 });
    await until(
      async () => (await request(h.service.app).get('/readyz')).status === 200,
      'the caches synced',
    );
    expect(await postFiring()).toMatchObject({ outcome: 'skipped', reason: 'scaling' });

    h.kube.deleteAutoscaler('payments', 'api-hpa');

    await until(
      async () => (await postFiring()).outcome === 'rebalanced',
      'the watch brought the deletion',
    );
    expect(h.kube.removals).toHaveLength(2);
  });
});

/** Waits, a bounded number of times, for a condition that depends on a watch catching up. */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}
