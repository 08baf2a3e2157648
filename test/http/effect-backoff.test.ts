import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { ownedBy, seedDeployment, startHarness, TOKEN, type Harness } from '../support/harness.js';
import { payload } from './payload.js';

const MINUTE = 60_000;
const LEASE = 'pod-rebalancer/payments.api';

/** A clock the test moves forward, so cooldowns pass without waiting. */
function manualClock() {
  let now = Date.now();
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

let h: Harness;
afterEach(() => h?.stop());

/** The ReplicaSet replaces each removed pod with one that behaves the same (a structurally hot key). */
function replaceRemovedPods(
  h: Harness,
  clock: { now: () => Date },
  cpuOf: (name: string) => number,
) {
  let replaced = 0;
  h.kube.afterRequest = (method, path) => {
    const evicted = /pods\/([^/]+)\/eviction$/.exec(path);
    if (method !== 'POST' || !evicted || h.kube.pods.has(`payments/${evicted[1]}`)) return;
    const name = `${evicted[1]!.replace(/-r\d+$/, '')}-r${++replaced}`;
    h.kube.addPod({
      metadata: { namespace: 'payments', name, uid: `uid-${name}`, ...ownedBy('api') },
      status: {
        phase: 'Running',
        startTime: new Date(clock.now().getTime() - 60 * MINUTE).toISOString(),
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
    h.prom.cpu.set(`payments/${name}`, cpuOf(name));
  };
}

async function setup(env: Record<string, string> = {}) {
  const clock = manualClock();
  h = await startHarness({ COOLDOWN: '15m', MAX_COOLDOWN: '24h', ...env }, { clock });
  seedDeployment(h, {
    namespace: 'payments',
    name: 'api',
    cpu: { 'api-hot': 1.8, 'api-a': 0.6, 'api-b': 0.62, 'api-c': 0.58, 'api-cold': 0.05 },
  });
  replaceRemovedPods(h, clock, (name) => (name.startsWith('api-hot') ? 1.8 : 0.05));
  const alert = async (startsAt = '2026-11-28T16:44:56.709Z', app = h.service.app) => {
    const body = payload();
    (body.alerts as { startsAt: string }[])[0]!.startsAt = startsAt;
    const res = await request(app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(body);
    return res.body.results[0] as { outcome: string; reason: string; detail: string };
  };
  const lease = () => h.kube.leases.get(LEASE)!;
  return { clock, alert, lease };
}

describe('judging each action and backing off when it does not help', () => {
  it('when the imbalance persists after each action, then the cooldown doubles, doubles again, then acting stops with a Warning Event', async () => {
    const { clock, alert, lease } = await setup();

    expect(await alert()).toMatchObject({ outcome: 'rebalanced' });
    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);

    clock.advance(16 * MINUTE);
    expect(await alert()).toMatchObject({ outcome: 'rebalanced' });
    expect(lease().spec.leaseDurationSeconds).toBe(30 * 60);
    expect(lease().metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('1');

    clock.advance(20 * MINUTE);
    expect(await alert()).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });

    clock.advance(11 * MINUTE);
    expect(await alert()).toMatchObject({ outcome: 'rebalanced' });
    expect(lease().spec.leaseDurationSeconds).toBe(60 * 60);

    clock.advance(61 * MINUTE);
    const stopped = await alert();

    expect(stopped).toMatchObject({ outcome: 'skipped', reason: 'ineffective' });
    expect(stopped.detail).toContain('to resume: pod-rebalancer resume payments/api');
    expect(h.kube.removals).toHaveLength(6);
    expect(lease().metadata.annotations['pod-rebalancer.io/ineffective']).toMatch(
      /3 consecutive actions did not lower/,
    );
    expect(h.kube.events.filter((e) => e.reason === 'RebalanceIneffective')).toEqual([
      expect.objectContaining({
        type: 'Warning',
        involvedObject: expect.objectContaining({ name: 'api' }),
      }),
    ]);

    // Stopped means stopped: a day later nothing is queried, nothing removed, no second Event.
    clock.advance(24 * 60 * MINUTE);
    const queries = h.prom.queries.length;
    expect(await alert()).toMatchObject({ outcome: 'skipped', reason: 'ineffective' });
    expect(h.prom.queries).toHaveLength(queries);
    expect(h.kube.removals).toHaveLength(6);
    expect(h.kube.events.filter((e) => e.reason === 'RebalanceIneffective')).toHaveLength(1);
  });

  it('when the stddev falls by the configured share after an action, then it counts as effective and the cooldown resets', async () => {
    const { clock, alert, lease } = await setup();
    await alert();
    clock.advance(16 * MINUTE);
    await alert(); // ineffective: the cooldown is now 30m
    expect(lease().spec.leaseDurationSeconds).toBe(30 * 60);
    // The imbalance is now much milder, still above the threshold: the last action helped.
    for (const key of h.prom.cpu.keys()) {
      if (/api-hot/.test(key)) h.prom.cpu.set(key, 1.3);
      if (/api-cold/.test(key)) h.prom.cpu.set(key, 0.3);
    }

    clock.advance(31 * MINUTE);
    expect(await alert()).toMatchObject({ outcome: 'rebalanced' });

    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);
    expect(lease().metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
    const metrics = (await request(h.service.app).get('/metrics')).text;
    expect(metrics).toContain('pod_rebalancer_actions_judged_total{effect="ineffective"} 1');
    expect(metrics).toContain('pod_rebalancer_actions_judged_total{effect="effective"} 1');
    expect(metrics).toContain('pod_rebalancer_action_effect_ratio_count 2');
    expect(metrics).toContain(
      'pod_rebalancer_deployment_cooldown_seconds{namespace="payments",deployment="api"} 900',
    );
  });

  it('when the imbalance stayed away a whole cooldown before the alert came back, then the action counts as effective', async () => {
    const { clock, alert, lease } = await setup();
    await alert();

    clock.advance(40 * MINUTE);
    // The alert that brings us back started firing 20 minutes after the action's cooldown ended.
    const startsAt = new Date(clock.now().getTime() - 5 * MINUTE).toISOString();
    expect(await alert(startsAt)).toMatchObject({ outcome: 'rebalanced' });

    expect(lease().metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);
  });

  it('when a person removes the ineffective annotation, then it acts again with the base cooldown', async () => {
    const { clock, alert, lease } = await setup({ INEFFECTIVE_LIMIT: '1' });
    await alert();
    clock.advance(16 * MINUTE);
    expect(await alert()).toMatchObject({ reason: 'ineffective' });

    // kubectl -n pod-rebalancer annotate lease payments.api pod-rebalancer.io/ineffective-
    delete lease().metadata.annotations['pod-rebalancer.io/ineffective'];
    lease().metadata.resourceVersion = String(Number(lease().metadata.resourceVersion) + 1);
    clock.advance(MINUTE);

    expect(await alert()).toMatchObject({ outcome: 'rebalanced' });
    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);
    expect(lease().metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
    expect(h.kube.removals).toHaveLength(4);
  });

  it('when one replica stopped acting, then another replica sharing the Lease stops too', async () => {
    const { clock, alert } = await setup({ INEFFECTIVE_LIMIT: '1' });
    const replicaB = h.replica('replica-b');
    await alert();
    clock.advance(16 * MINUTE);
    expect(await alert()).toMatchObject({ reason: 'ineffective' });

    clock.advance(60 * MINUTE);

    expect(await alert(undefined, replicaB.app)).toMatchObject({
      outcome: 'skipped',
      reason: 'ineffective',
    });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when the previous action was a dry run, then it is not judged and the cooldown stays at its base', async () => {
    const { clock, alert, lease } = await setup({ DRY_RUN: 'true' });
    await alert();
    clock.advance(16 * MINUTE);

    expect(await alert()).toMatchObject({ outcome: 'dry-run' });

    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);
    expect(lease().metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
  });

  it('when every attempt is refused by a PodDisruptionBudget, then nothing is judged: no ineffective streak, no longer cooldown, no stop; the Lease records the attempt apart and the budget slot goes back', async () => {
    const { clock, alert, lease } = await setup({ ACTION_BUDGET: '5/1h' });
    h.kube.pdbBlocked.add('payments/api-hot');
    h.kube.pdbBlocked.add('payments/api-cold');

    for (let attempt = 0; attempt < 4; attempt++) {
      expect(await alert()).toMatchObject({ outcome: 'skipped', reason: 'pdb-blocked' });
      clock.advance(16 * MINUTE);
    }

    expect(h.kube.removals).toEqual([]);
    const annotations = lease().metadata.annotations;
    expect(annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
    expect(annotations['pod-rebalancer.io/ineffective']).toBeUndefined();
    expect(annotations['pod-rebalancer.io/last-action']).toBeUndefined();
    expect(JSON.parse(annotations['pod-rebalancer.io/last-attempt'])).toMatchObject({
      pods: ['api-hot: pdb-blocked', 'api-cold: pdb-blocked'],
    });
    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);
    expect(h.kube.events.filter((e) => e.reason === 'RebalanceIneffective')).toEqual([]);
    const budget = h.kube.leases.get('pod-rebalancer/pod-rebalancer-action-budget');
    expect(JSON.parse(budget!.metadata.annotations['pod-rebalancer.io/actions'])).toEqual([]);
    const metrics = (await request(h.service.app).get('/metrics')).text;
    expect(metrics).toContain('pod_rebalancer_actions_judged_total{effect="ineffective"} 0');
  });

  it('when an earlier real action is followed by a refused attempt, then the attempt keeps that action to judge and its count', async () => {
    const { clock, alert, lease } = await setup();
    expect(await alert()).toMatchObject({ outcome: 'rebalanced' });
    const action = lease().metadata.annotations['pod-rebalancer.io/last-action'];
    clock.advance(16 * MINUTE);
    for (const pod of h.kube.pods.keys()) h.kube.pdbBlocked.add(pod);

    expect(await alert()).toMatchObject({ outcome: 'skipped', reason: 'pdb-blocked' });

    expect(lease().metadata.annotations['pod-rebalancer.io/last-action']).toBe(action);
    expect(lease().metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
    expect(lease().spec.leaseDurationSeconds).toBe(15 * 60);
  });
});
