import { afterEach, describe, expect, it } from '@jest/globals';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaseCooldownStore, ROTATION_ANNOTATION } from '../../src/adapters/cooldown-lease.js';
import type { KubeApis } from '../../src/adapters/kube-api.js';
import { createLogger } from '../../src/adapters/logger.js';
import { loadConfig } from '../../src/config.js';
import { realAdapters } from '../../src/main.js';
import type { Clock } from '../../src/ports.js';
import { createService, type Service } from '../../src/service.js';
import {
  type Harness,
  postWebhook,
  seedAutoscaler,
  seedImbalanced,
  startHarness,
  TOKEN,
} from '../support/harness.js';
import { waitFor } from '../support/processes.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const LEASE = 'pod-rebalancer/payments.api';
const BROKER_DOWN = 'kafka_broker_up == 0';

/** The rotation progress the Deployment's Lease holds, parsed. */
function storedRotation(): Record<string, unknown> | undefined {
  const text = h.kube.leases.get(LEASE)?.metadata.annotations?.[ROTATION_ANNOTATION];
  return text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
}

const removed = () => h.kube.removals.map((r) => r.name);
const eventsOf = (reason: string) =>
  h.kube.events.filter((e: { reason?: string }) => e.reason === reason);

/** A clock the test moves by hand. */
function handClock(): Clock & { advance(ms: number): void } {
  let now = Date.now();
  return { now: () => new Date(now), advance: (ms) => (now += ms) };
}

/** The env the harness runs with, for a replica built here with settings of its own. */
function envOf(extra: Record<string, string>): Record<string, string> {
  return {
    PROMETHEUS_URL: h.prom.url,
    WEBHOOK_TOKEN: TOKEN,
    PROMETHEUS_TIMEOUT: '2s',
    ROTATION: 'one-by-one',
    ...extra,
  };
}

/** Another replica against the same fakes, started with other settings (DRY_RUN=true, say). */
function replicaWith(extra: Record<string, string>): Service {
  const env = envOf(extra);
  const config = loadConfig(env);
  const adapters = realAdapters(config, { ...env, POD_NAME: 'replica-b' }, h.kube.kubeConfig());
  return createService(config, { ...adapters, caches: undefined, logger: createLogger('error') });
}

const deployment = () => h.kube.deployments.get('payments/api')!;

async function startOneByOne(
  env: Record<string, string> = {},
  options: Parameters<typeof startHarness>[1] = {},
): Promise<void> {
  h = await startHarness({ ROTATION: 'one-by-one', ...env }, options);
  // Removed pods are replaced at once by a pod that turns Ready only when the test says so.
  h.kube.replacePods = {};
  seedImbalanced(h);
}

describe('one-by-one rotation: the hottest first, the coldest once its replacement is Ready', () => {
  it('when the alert fires, then only the hottest pod is removed and the answer says rotation 1 of 2, naming the pod that follows', async () => {
    await startOneByOne();

    const res = await postWebhook(h.service.app, payload());

    expect(res.status).toBe(200);
    const [result] = res.body.results;
    expect(result).toMatchObject({
      outcome: 'rebalanced',
      pods: [{ name: 'api-hot', result: 'evicted' }],
      rotation: { step: 1, of: 2, next: 'api-cold' },
      policy: { rotation: 'one-by-one', source: { rotation: 'configuration' } },
    });
    expect(result.detail).toMatch(/rotation: 1 of 2, api-cold follows/);
    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'waiting', next: { name: 'api-cold' } });
  });

  it('when the driver runs on its timer, then the coldest pod is removed only after the replacement turned Ready', async () => {
    await startOneByOne({}, { rotationCheckMs: 100 });
    h.kube.replacePods = { readyAfterMs: 1500 };
    h.service.rotations.start();

    await postWebhook(h.service.app, payload());
    await waitFor('the rotation to end', () => storedRotation()?.step === 'ended', 20_000, 50);

    expect(removed()).toEqual(['api-hot', 'api-cold']);
    const readyAt = h.kube.replacements[0]!.readyAt!;
    expect(readyAt).toBeDefined();
    expect(h.kube.removedAt.get('payments/api-cold')!.getTime()).toBeGreaterThanOrEqual(
      readyAt.getTime(),
    );
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'done' });
    // The action's record names both pods and dates from its last step.
    const lastAction = JSON.parse(
      h.kube.leases.get(LEASE)!.metadata.annotations['pod-rebalancer.io/last-action'],
    );
    expect(lastAction.pods).toEqual(['api-hot', 'api-cold']);
    expect(new Date(lastAction.at).getTime()).toBeGreaterThanOrEqual(readyAt.getTime());
  });

  it('when the replacement is Running but not Ready, then the coldest pod stays', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'waiting' });
  });

  it('when a new alert comes while the rotation waits, then it is held back until the last step', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();

    const again = await postWebhook(h.service.app, payload());

    expect(removed()).toEqual(['api-hot']);
    expect(again.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'cooldown',
      detail: expect.stringMatching(/rotation 1 of 2 in progress: api-cold follows api-hot/),
    });
  });

  it('when the replacement never becomes Ready within ROTATION_TIMEOUT, then only one pod is removed, a Warning RebalanceStalled is recorded, it is counted, and it counts as ineffective', async () => {
    const clock = handClock();
    await startOneByOne({ ROTATION_TIMEOUT: '2m' }, { clock });
    await postWebhook(h.service.app, payload());

    clock.advance(2 * 60_000 + 1000);
    await h.service.rotations.tick();
    h.kube.readyReplacements();
    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(eventsOf('RebalanceStalled')).toEqual([
      expect.objectContaining({
        type: 'Warning',
        message: expect.stringMatching(/api-cold is kept/),
      }),
    ]);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'stalled' });
    const annotations = h.kube.leases.get(LEASE)!.metadata.annotations;
    expect(annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('1');
    const metrics = await h.service.registry.metrics();
    expect(metrics).toMatch(/pod_rebalancer_rotations_total\{result="stalled"\} 1/);
    expect(metrics).toMatch(/pod_rebalancer_actions_judged_total\{effect="ineffective"\} 1/);
  });

  it('when the next alert comes after a stalled rotation, then the stall is not judged a second time', async () => {
    const clock = handClock();
    await startOneByOne({ ROTATION_TIMEOUT: '2m', COOLDOWN: '15m' }, { clock });
    await postWebhook(h.service.app, payload());
    clock.advance(2 * 60_000 + 1000);
    await h.service.rotations.tick();
    // The stall doubled the cooldown (30 m from the stall): come back after it.
    clock.advance(31 * 60_000);
    h.kube.readyReplacements();
    h.prom.cpu.set('payments/api-hot-r1', 1.7);

    const next = await postWebhook(h.service.app, payload());

    expect(next.body.results[0]).toMatchObject({
      outcome: 'rebalanced',
      detail: expect.any(String),
    });
    const annotations = h.kube.leases.get(LEASE)!.metadata.annotations;
    expect(annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('1');
    expect(await h.service.registry.metrics()).toMatch(
      /pod_rebalancer_actions_judged_total\{effect="ineffective"\} 1\n/,
    );
  });

  it('when the replica that started the rotation restarts, then the restarted one finishes it', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();

    // A new service with the same identity, as after a restart: nothing but the Lease carries over.
    await h.replica('replica-a').rotations.tick();

    expect(removed()).toEqual(['api-hot', 'api-cold']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'done' });
  });

  it('when a guard starts holding between the steps, then step 2 waits until it lets go', async () => {
    await startOneByOne({ GUARD_QUERY: BROKER_DOWN });
    await postWebhook(h.service.app, payload());
    h.prom.series.set(BROKER_DOWN, [{ labels: { __name__: 'kafka_broker_up' }, value: 0 }]);
    h.kube.readyReplacements();

    await h.service.rotations.tick();
    const whileGuarded = removed();
    h.prom.series.delete(BROKER_DOWN);
    await h.service.rotations.tick();

    expect(whileGuarded).toEqual(['api-hot']);
    expect(removed()).toEqual(['api-hot', 'api-cold']);
  });

  it('when a HorizontalPodAutoscaler starts scaling the Deployment between the steps, then step 2 waits until it is steady again', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    const hpa = { namespace: 'payments', name: 'api-hpa', target: 'api', currentReplicas: 3 };
    seedAutoscaler(h, { ...hpa, desiredReplicas: 5, lastScaledAgoMs: 0 });
    h.kube.readyReplacements();

    await h.service.rotations.tick();
    const whileScaling = removed();
    const waiting = storedRotation();
    h.kube.deleteAutoscaler('payments', 'api-hpa');
    seedAutoscaler(h, { ...hpa, desiredReplicas: 3, lastScaledAgoMs: 24 * 3_600_000 });
    await h.service.rotations.tick();

    expect(whileScaling).toEqual(['api-hot']);
    expect(waiting).toMatchObject({ step: 'waiting' });
    expect(removed()).toEqual(['api-hot', 'api-cold']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'done' });
  });

  it("when the rule's own guard holds between the steps, then step 2 waits for it too", async () => {
    await startOneByOne();
    await postWebhook(
      h.service.app,
      payload([{ annotations: { pod_rebalancer_guard: BROKER_DOWN } }]),
    );
    h.prom.series.set(BROKER_DOWN, [{ labels: { __name__: 'kafka_broker_up' }, value: 0 }]);
    h.kube.readyReplacements();

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'waiting' });
  });

  it('when the coldest pod is gone before step 2, then the rotation ends with one removal and says so', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    h.kube.pods.delete('payments/api-cold');

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'next-gone' });
    expect(eventsOf('RebalanceRotationEnded')).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/api-cold is gone or replaced/) }),
    ]);
  });

  it('when a PodDisruptionBudget refuses step 2, then it is retried and done once the budget allows, with one Warning for all the refusals', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    h.kube.pdbBlocked.add('payments/api-cold');

    for (let pass = 0; pass < 3; pass++) await h.service.rotations.tick();
    const whileBlocked = removed();
    const evictionsTried = h.kube.requests.filter((r) => r.path.endsWith('/api-cold/eviction'));
    h.kube.pdbBlocked.clear();
    await h.service.rotations.tick();

    expect(whileBlocked).toEqual(['api-hot']);
    expect(evictionsTried).toHaveLength(3);
    expect(eventsOf('RebalanceBlocked')).toEqual([
      expect.objectContaining({ type: 'Warning', message: expect.stringContaining('api-cold') }),
    ]);
    expect(removed()).toEqual(['api-hot', 'api-cold']);
    expect(eventsOf('Rebalanced')).toHaveLength(2);
  });

  it('when the Lease changes between the claim of step 2 and its record, then the rotation is still recorded as done', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    h.kube.afterRequest = (method, path) => {
      // Another writer (a person's resume, say) touches the Lease while the eviction runs.
      if (method === 'POST' && path.endsWith('/pods/api-cold/eviction')) {
        h.kube.leases.get(LEASE)!.metadata.resourceVersion = '999999';
      }
    };

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot', 'api-cold']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'done' });
  });

  it('when the watch caches lag behind, then step 2 acts on what the API server says, not on the cache', async () => {
    await startOneByOne({}, { watchCaches: true });
    await waitFor('the caches to sync', () => h.kube.openWatches >= 2, 10_000, 50);
    // From here the caches hear nothing: they still show all 5 replicas available.
    h.kube.holdWatches();
    await postWebhook(h.service.app, payload());
    // The replacement turns Ready, but the API server still counts 4 of 5 available.
    h.kube.pods.get('payments/api-hot-r1')!.status.conditions = [{ type: 'Ready', status: 'True' }];

    await h.service.rotations.tick();
    const whileUnavailable = removed();
    h.kube.readyReplacements();
    await h.service.rotations.tick();

    expect(whileUnavailable).toEqual(['api-hot']);
    expect(removed()).toEqual(['api-hot', 'api-cold']);
    h.kube.releaseWatches();
  });

  it('when DRY_RUN is turned on between the steps (a replica restarted with it), then step 2 removes nothing, the rotation ends as dry-run and is counted', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    const dryRun = replicaWith({ DRY_RUN: 'true' });

    await dryRun.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'dry-run' });
    expect(await dryRun.registry.metrics()).toMatch(
      /pod_rebalancer_rotations_total\{result="dry-run"\} 1/,
    );
  });

  it('when REQUIRE_OPT_IN is on and the opt-in annotation is removed between the steps, then step 2 removes nothing and the rotation ends out-of-scope', async () => {
    await startOneByOne({ REQUIRE_OPT_IN: 'true' });
    deployment().metadata.annotations = { 'pod-rebalancer.io/enabled': 'true' };
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    deployment().metadata.annotations = {};

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'out-of-scope' });
  });

  it('when a rollout starts between the steps, then step 2 removes nothing and the rotation ends rollout-in-progress', async () => {
    await startOneByOne();
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    // A new template: the controller has not observed the latest generation yet.
    deployment().metadata.generation = 3;

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'rollout-in-progress' });
  });

  it('when the hottest pod is still there and not terminating (step 1 removed nothing), then a newcomer that is Ready is not taken for its replacement', async () => {
    await startOneByOne();
    const hot = structuredClone(h.kube.pods.get('payments/api-hot')!);
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    // The eviction did not take: the same pod (same uid) is still there, not terminating.
    h.kube.pods.set('payments/api-hot', hot);

    await h.service.rotations.tick();

    expect(removed()).toEqual(['api-hot']);
    expect(storedRotation()).toMatchObject({ step: 'waiting' });
  });

  it('when the Leases are listed for the rotations, then those without a rotation are left out before being parsed', async () => {
    await startOneByOne();
    seedImbalanced(h, 'payments', 'web');
    await postWebhook(h.service.app, payload());
    await postWebhook(
      h.service.app,
      payload([
        {
          labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'web' },
          annotations: { pod_rebalancer_rotation: 'together' },
        },
      ]),
    );
    const env = envOf({});
    const { cooldown } = realAdapters(loadConfig(env), env, h.kube.kubeConfig());
    const leases = [...h.kube.leases.values()] as V1Lease[];
    const cached = new LeaseCooldownStore({} as KubeApis, 'pod-rebalancer', {
      get: () => Promise.resolve(undefined),
      list: () => leases,
    });
    const targets = async (store: Pick<LeaseCooldownStore, 'list'>, rotating: boolean) =>
      (await store.list({ rotating })).map((e) => e.target.deployment).sort();

    expect(await targets(cooldown as LeaseCooldownStore, false)).toEqual(['api', 'web']);
    expect(await targets(cooldown as LeaseCooldownStore, true)).toEqual(['api']);
    expect(await targets(cached, true)).toEqual(['api']);
  });

  it('when two replicas race for step 2, then exactly one evicts the coldest pod', async () => {
    await startOneByOne();
    const other = h.replica('replica-b');
    await postWebhook(h.service.app, payload());
    h.kube.readyReplacements();
    // Both replicas list the Leases at the same moment, so both see the rotation waiting.
    h.kube.fail({ method: 'GET', path: /\/leases$/, delayMs: 300, times: 2 });

    await Promise.all([h.service.rotations.tick(), other.rotations.tick()]);

    const evictions = h.kube.requests.filter(
      (r) => r.method === 'POST' && r.path.endsWith('/pods/api-cold/eviction'),
    );
    expect(evictions).toHaveLength(1);
    expect(removed()).toEqual(['api-hot', 'api-cold']);
    expect(storedRotation()).toMatchObject({ step: 'ended', end: 'done' });
  });

  it('when the hottest pod cannot be removed (PodDisruptionBudget), then no rotation is left waiting', async () => {
    await startOneByOne();
    h.kube.pdbBlocked.add('payments/api-hot');

    const res = await postWebhook(h.service.app, payload());
    await h.service.rotations.tick();

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'pdb-blocked' });
    expect(res.body.results[0].rotation).toBeUndefined();
    expect(storedRotation()).toBeUndefined();
    expect(removed()).toEqual([]);
  });

  it('when DRY_RUN is on, then both pods are shown in the order they would go, nothing is removed and no rotation is stored', async () => {
    await startOneByOne({ DRY_RUN: 'true' });

    const res = await postWebhook(h.service.app, payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'dry-run',
      pods: [
        { name: 'api-hot', result: 'would-evict' },
        { name: 'api-cold', result: 'would-evict' },
      ],
      detail: expect.stringMatching(/rotation: one-by-one, api-hot first, then api-cold/),
    });
    expect(removed()).toEqual([]);
    expect(storedRotation()).toBeUndefined();
  });

  it('when the alert carries pod_rebalancer_rotation: together, then both pods go at once whatever ROTATION says', async () => {
    await startOneByOne();

    const res = await postWebhook(
      h.service.app,
      payload([{ annotations: { pod_rebalancer_rotation: 'together' } }]),
    );

    expect(res.body.results[0]).toMatchObject({
      outcome: 'rebalanced',
      policy: { rotation: 'together', source: { rotation: 'alert annotation' } },
    });
    expect(removed()).toEqual(['api-hot', 'api-cold']);
    expect(storedRotation()).toBeUndefined();
  });

  it('when the alert carries an unknown rotation, then 200 invalid-policy naming the value, and nothing is written', async () => {
    await startOneByOne();

    const res = await postWebhook(
      h.service.app,
      payload([{ annotations: { pod_rebalancer_rotation: 'staggered' } }]),
    );

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'invalid-policy',
      detail: expect.stringMatching(/pod_rebalancer_rotation "staggered"/),
    });
    expect(h.kube.leases.size).toBe(0);
  });
});
