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

const post = (body: unknown, app = h.service.app) => postWebhook(app, body);

/** A window that is certainly closed now: it opens two hours from now (UTC) for one hour. */
function closedWindow(now = new Date()): string {
  const at = (offsetH: number) => {
    const d = new Date(now.getTime() + offsetH * 3_600_000);
    return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  };
  return `Mon-Sun ${at(2)}-${at(3)} UTC`;
}

describe('skip reasons through HTTP: each one acknowledges the alert with 200 and removes nothing', () => {
  const labels = (overrides: Record<string, string | undefined>) =>
    Object.fromEntries(
      Object.entries({
        alertname: 'DeploymentCPUImbalance',
        namespace: 'payments',
        deployment: 'api',
        ...overrides,
      }).filter(([, v]) => v !== undefined),
    ) as Record<string, string>;

  it.each([
    [
      'unknown-alert',
      'the alertname is not ours',
      () => payload([{ labels: labels({ alertname: 'KubePodCrashLooping' }) }]),
      {},
    ],
    [
      'missing-labels',
      'the alert has no deployment label',
      () => payload([{ labels: labels({ deployment: undefined }) }]),
      {},
    ],
    [
      'missing-labels',
      'the deployment label is not a Kubernetes name',
      () => payload([{ labels: labels({ deployment: 'Api/../x' }) }]),
      {},
    ],
    [
      'not-found',
      'the Deployment does not exist',
      () => payload([{ labels: labels({ deployment: 'gone' }) }]),
      {},
    ],
    [
      'outside-window',
      'ACTIVE_WINDOW is closed',
      () => payload(),
      { ACTIVE_WINDOW: closedWindow() },
    ],
  ])('%s: when %s', async (reason, _when, body, env) => {
    h = await startHarness(env as Record<string, string>);
    seedImbalanced(h);

    const res = await post(body());

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([expect.objectContaining({ outcome: 'skipped', reason })]);
    expect(h.kube.removals).toEqual([]);
  });

  it('opted-out: when the Deployment is annotated pod-rebalancer.io/enabled=false', async () => {
    h = await startHarness();
    seedDeployment(h, {
      namespace: 'payments',
      name: 'api',
      cpu: { a: 2, b: 0.1, c: 0.5 },
      annotations: { 'pod-rebalancer.io/enabled': 'false' },
    });

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'opted-out' });
    expect(h.kube.removals).toEqual([]);
  });

  it('rollout-in-progress: when not all replicas are updated', async () => {
    h = await startHarness();
    seedDeployment(h, {
      namespace: 'payments',
      name: 'api',
      cpu: { a: 2, b: 0.1, c: 0.5 },
      rolloutInProgress: true,
    });

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'rollout-in-progress',
    });
    expect(h.prom.queries).toHaveLength(0);
  });

  it('below-threshold: when the fresh stddev is no longer above the threshold', async () => {
    h = await startHarness();
    seedDeployment(h, {
      namespace: 'payments',
      name: 'api',
      cpu: { a: 0.5, b: 0.55, c: 0.6, d: 0.52 },
    });

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'below-threshold',
      stats: { count: 4 },
    });
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
  });

  it('too-few-pods: when young, unready and (with MIN_SAMPLE_COVERAGE 0.6) sample-less pods leave fewer than MIN_PODS', async () => {
    h = await startHarness({ MIN_SAMPLE_COVERAGE: '0.6' });
    seedDeployment(h, {
      namespace: 'payments',
      name: 'api',
      cpu: { hot: 2, cold: 0.01, young: 0.0, unready: 0.3, nosample: undefined },
      pods: { young: { startedAgoMs: 60_000 }, unready: { ready: false } },
    });

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'too-few-pods',
      stats: { count: 2 },
    });
    expect(h.kube.removals).toEqual([]);
  });

  it('cooldown: when the same alert comes again after an action, then nothing more is removed', async () => {
    h = await startHarness();
    seedImbalanced(h);

    await post(payload());
    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('pdb-blocked: when a PodDisruptionBudget refuses both evictions, then a Warning Event says so', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.pdbBlocked.add('payments/api-hot');
    h.kube.pdbBlocked.add('payments/api-cold');

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'pdb-blocked',
      pods: [
        expect.objectContaining({ result: 'pdb-blocked' }),
        expect.objectContaining({ result: 'pdb-blocked' }),
      ],
    });
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'RebalanceBlocked' }),
    ]);
    // Each pod was asked once: a 429 is recorded, not retried in a loop.
    expect(h.kube.requests.filter((r) => r.path.endsWith('/eviction'))).toHaveLength(2);
  });
});

describe('acting', () => {
  it('when other pods match the selector (a canary Deployment, a bare debug pod), then they are neither counted nor removed', async () => {
    h = await startHarness();
    seedImbalanced(h);
    const stranger = (name: string, ownerReferences: object[]) =>
      h.kube.addPod({
        metadata: {
          namespace: 'payments',
          name,
          uid: `uid-${name}`,
          labels: { app: 'api', 'pod-template-hash': 'c4n4ry' },
          ownerReferences,
        },
        status: {
          phase: 'Running',
          startTime: new Date(Date.now() - 3_600_000).toISOString(),
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      });
    stranger('api-canary-c4n4ry-x', [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'api-canary-c4n4ry',
        uid: 'rs2',
        controller: true,
      },
    ]);
    stranger('debug', []);
    h.prom.cpu.set('payments/api-canary-c4n4ry-x', 5);
    h.prom.cpu.set('payments/debug', 0);

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'rebalanced',
      stats: { count: 5, max: 1.8, min: 0.05 },
    });
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
  });

  it('when only the first eviction is blocked by a PDB, then the second pod is still evicted and each result is reported', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.pdbBlocked.add('payments/api-hot');

    const res = await post(payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'rebalanced',
      pods: [
        { name: 'api-hot', result: 'pdb-blocked' },
        { name: 'api-cold', result: 'evicted' },
      ],
    });
    expect(h.kube.removals).toEqual([{ namespace: 'payments', name: 'api-cold', via: 'eviction' }]);
  });

  it('when the first eviction fails with a 500, then the second is not attempted and the outcome is failed', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.fail({ method: 'POST', path: /\/eviction$/, status: 500 });

    const res = await post(payload());

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'removal-failed',
      pods: [
        { name: 'api-hot', result: 'failed' },
        { name: 'api-cold', result: 'not-attempted' },
      ],
    });
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'RebalanceFailed' }),
    ]);
  });

  it('when DRY_RUN=true, then it decides, takes the cooldown and records, but removes nothing', async () => {
    h = await startHarness({ DRY_RUN: 'true' });
    seedImbalanced(h);

    const first = await post(payload());
    const second = await post(payload());

    expect(first.body.results[0]).toMatchObject({
      outcome: 'dry-run',
      reason: 'imbalanced',
      pods: [
        { name: 'api-hot', result: 'would-evict' },
        { name: 'api-cold', result: 'would-evict' },
      ],
    });
    expect(second.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toEqual([]);
    expect(
      h.kube.requests.filter((r) => r.method === 'DELETE' || r.path.endsWith('/eviction')),
    ).toEqual([]);
    expect(h.kube.events).toEqual([
      expect.objectContaining({ type: 'Normal', reason: 'RebalanceDryRun' }),
    ]);
  });

  it('when ACTION=delete, then the pods are deleted directly with a uid precondition', async () => {
    h = await startHarness({ ACTION: 'delete' });
    seedImbalanced(h);

    const res = await post(payload());

    expect(res.body.results[0].pods.map((p: { result: string }) => p.result)).toEqual([
      'deleted',
      'deleted',
    ]);
    expect(h.kube.removals.map((r) => r.via)).toEqual(['delete', 'delete']);
    const deletes = h.kube.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => r.body?.preconditions?.uid)).toEqual(['uid-api-hot', 'uid-api-cold']);
  });

  it('when the chosen pod was replaced between listing and deletion, then the uid precondition protects the newcomer', async () => {
    h = await startHarness({ ACTION: 'delete' });
    seedImbalanced(h);
    // Right after the pods are listed, api-hot is replaced by a namesake with a new uid.
    h.kube.afterRequest = (method, path) => {
      if (method === 'GET' && path.endsWith('/pods'))
        h.kube.pods.get('payments/api-hot')!.metadata.uid = 'uid-newcomer';
    };

    const res = await post(payload());

    expect(res.body.results[0].pods[0]).toMatchObject({ name: 'api-hot', result: 'gone' });
    expect(h.kube.pods.get('payments/api-hot')?.metadata.uid).toBe('uid-newcomer');
    expect(h.kube.removals).toEqual([{ namespace: 'payments', name: 'api-cold', via: 'delete' }]);
  });

  it('when two alerts in one payload name the same Deployment, then it is handled once and both are reported', async () => {
    h = await startHarness();
    seedImbalanced(h);

    const res = await post(payload([{ fingerprint: 'one' }, { fingerprint: 'two' }]));

    expect(res.body.results).toEqual([
      expect.objectContaining({ fingerprint: 'one', outcome: 'rebalanced' }),
      expect.objectContaining({ fingerprint: 'two', outcome: 'rebalanced' }),
    ]);
    expect(h.kube.removals).toHaveLength(2);
    expect(h.prom.queries).toHaveLength(1);
  });
});
