import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { BUDGET_ANNOTATION, BUDGET_LEASE_NAME } from '../../src/adapters/budget-lease.js';
import {
  type Harness,
  postWebhook,
  seedImbalanced,
  startHarness,
  TOKEN,
} from '../support/harness.js';
import { payload } from './payload.js';
import { waitFor } from '../support/processes.js';

let h: Harness;
afterEach(() => h?.stop());

const post = (deployment: string, app = h.service.app) =>
  postWebhook(
    app,
    payload([
      {
        labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
        fingerprint: `f-${deployment}`,
      },
    ]),
  );

const BUDGET_KEY = `pod-rebalancer/${BUDGET_LEASE_NAME}`;
const budgetEntries = (): unknown[] =>
  JSON.parse(h.kube.leases.get(BUDGET_KEY)?.metadata.annotations[BUDGET_ANNOTATION] ?? '[]');
const removedFrom = (deployment: string) =>
  h.kube.removals.filter((r) => r.name.startsWith(`${deployment}-`));
const budgetEvents = () => h.kube.events.filter((e) => e.reason === 'ActionBudgetExhausted');

describe('ACTION_BUDGET: at most N actions per window, cluster-wide', () => {
  const remaining = async (app = h.service.app) =>
    /^pod_rebalancer_action_budget_remaining (\S+)$/m.exec(
      (await request(app).get('/metrics')).text,
    )?.[1];

  it('when a replica starts and nothing was acted on, then the gauge shows the whole budget, not 0', async () => {
    h = await startHarness({ ACTION_BUDGET: '5/1h' });

    expect(await remaining()).toBe('5');
  });

  it('when a replica starts after actions of another, then a scrape shows what the budget Lease says is left', async () => {
    h = await startHarness({ ACTION_BUDGET: '5/1h' });
    seedImbalanced(h, 'payments', 'api');
    await post('api');

    const fresh = h.replica('replica-b').app;

    await waitFor(
      'the fresh replica to read the budget Lease',
      async () => (await remaining(fresh)) === '4',
      10_000,
      50,
    );
    expect(await remaining(fresh)).toBe('4');
  });

  it('when the budget is used up, then 200 budget-exhausted, no cooldown Lease, a gauge of 0 and one Warning Event per window', async () => {
    h = await startHarness({ ACTION_BUDGET: '1/1h' });
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'worker');

    const first = await post('api');
    const refused = await post('worker');
    const again = await post('worker');

    expect(first.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    for (const res of [refused, again]) {
      expect(res.status).toBe(200);
      expect(res.body.results[0]).toMatchObject({
        outcome: 'skipped',
        reason: 'budget-exhausted',
        detail: expect.stringMatching(
          /ACTION_BUDGET 1\/1h is used up: 1 actions \(dry runs included\)/,
        ),
      });
    }
    expect(removedFrom('worker')).toEqual([]);
    expect(h.kube.leases.has('payments/pod-rebalancer-worker')).toBe(false);
    expect(budgetEntries()).toHaveLength(1);
    const metrics = await request(h.service.app).get('/metrics');
    expect(metrics.text).toMatch(/^pod_rebalancer_action_budget_remaining 0$/m);
    expect(budgetEvents()).toHaveLength(1);
    expect(budgetEvents()[0]).toMatchObject({
      type: 'Warning',
      involvedObject: { kind: 'Deployment', name: 'worker', uid: 'uid-deploy-worker' },
    });
  });

  it('when another replica refuses the same Deployment in the same window, then still one Event (its name is the same: 409 = already said)', async () => {
    h = await startHarness({ ACTION_BUDGET: '1/1h' });
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'worker');
    await post('api');

    await post('worker');
    await post('worker', h.replica('replica-b').app);

    expect(budgetEvents()).toHaveLength(1);
    const eventPosts = h.kube.requests.filter(
      (r) => r.method === 'POST' && r.path.endsWith('/events'),
    );
    expect(eventPosts.filter((r) => r.body?.reason === 'ActionBudgetExhausted')).toHaveLength(2);
  });

  it('when DRY_RUN=true, then dry runs use the budget too, so the burn-in shows where it would bite', async () => {
    h = await startHarness({ ACTION_BUDGET: '1/1h', DRY_RUN: 'true' });
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'worker');

    const first = await post('api');
    const second = await post('worker');

    expect(first.body.results[0]).toMatchObject({ outcome: 'dry-run' });
    expect(second.body.results[0]).toMatchObject({
      reason: 'budget-exhausted',
      detail: expect.stringContaining('dry runs included'),
    });
    expect(budgetEntries()).toEqual([
      expect.objectContaining({ deployment: 'payments/api', dryRun: true }),
    ]);
    expect(h.kube.removals).toEqual([]);
  });

  it('when ACTION_BUDGET=off, then no budget Lease is read or written', async () => {
    h = await startHarness({ ACTION_BUDGET: 'off' });
    seedImbalanced(h);

    const res = await post('api');

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.requests.filter((r) => r.path.includes(BUDGET_LEASE_NAME))).toEqual([]);
  });
});

describe('one payload naming more Deployments than the budget allows', () => {
  it('when 12 imbalanced Deployments arrive together under 5/1h, then exactly 5 act and 7 are refused, none fails', async () => {
    h = await startHarness({ ACTION_BUDGET: '5/1h' });
    const names = Array.from({ length: 12 }, (_, i) => `app${i}`);
    for (const name of names) seedImbalanced(h, 'payments', name);

    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(
        payload(
          names.map((deployment) => ({
            labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
            fingerprint: `f-${deployment}`,
          })),
        ),
      );

    expect(res.status).toBe(200);
    const outcomes = res.body.results.map(
      (r: { outcome: string; reason: string }) => `${r.outcome}/${r.reason}`,
    );
    expect(outcomes.filter((o: string) => o === 'rebalanced/imbalanced')).toHaveLength(5);
    expect(outcomes.filter((o: string) => o === 'skipped/budget-exhausted')).toHaveLength(7);
    expect(h.kube.removals).toHaveLength(10);
    expect(budgetEntries()).toHaveLength(5);
  });
});

describe('when the budget Lease cannot be written', () => {
  it('then 503 (Alertmanager retries), no cooldown Lease and nothing removed; the retry acts once', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.fail({ method: 'POST', path: /\/namespaces\/pod-rebalancer\/leases$/, status: 500 });

    const failed = await post('api');
    const retry = await post('api');

    expect(failed.status).toBe(503);
    expect(failed.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'kubernetes-unavailable',
    });
    expect(retry.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals).toHaveLength(2);
    expect(budgetEntries()).toHaveLength(1);
  });
});

describe('when the budget Lease holds an unreadable list of actions', () => {
  it.each([
    ['not JSON', 'not json ['],
    ['not a list', '{"used": 0}'],
    ['an action without a time', '[{"id":"a","deployment":"payments/x","dryRun":false}]'],
  ])(
    'when it is %s, then nothing acts (failed/kubernetes-error naming the fix), and the list is not reset',
    async (_name, text) => {
      h = await startHarness();
      seedImbalanced(h);
      h.kube.leases.set(BUDGET_KEY, {
        metadata: {
          name: BUDGET_LEASE_NAME,
          namespace: 'pod-rebalancer',
          resourceVersion: '7',
          annotations: { [BUDGET_ANNOTATION]: text },
        },
        spec: {},
      });

      const res = await post('api');

      expect(res.status).toBe(200);
      expect(res.body.results[0]).toMatchObject({
        outcome: 'failed',
        reason: 'kubernetes-error',
        detail: expect.stringContaining(`delete lease ${BUDGET_LEASE_NAME}`),
      });
      expect(h.kube.removals).toEqual([]);
      expect(h.kube.leases.get(BUDGET_KEY)?.metadata.annotations[BUDGET_ANNOTATION]).toBe(text);
    },
  );
});

describe('two replicas and one API server', () => {
  it('when both race for the last slot, then exactly one acts and the other is refused', async () => {
    h = await startHarness({ ACTION_BUDGET: '2/1h' });
    seedImbalanced(h, 'payments', 'first');
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'worker');
    await post('first');
    const replicaB = h.replica('replica-b');
    // Both replicas read the budget (one slot left) before either writes it back.
    h.kube.fail({
      method: 'PUT',
      path: new RegExp(`/leases/${BUDGET_LEASE_NAME}$`),
      delayMs: 300,
      times: 2,
    });

    const [a, b] = await Promise.all([post('api'), post('worker', replicaB.app)]);

    const results = [a.body.results[0], b.body.results[0]];
    expect(results.map((r) => r.outcome).sort()).toEqual(['rebalanced', 'skipped']);
    expect(results.find((r) => r.outcome === 'skipped')).toMatchObject({
      reason: 'budget-exhausted',
    });
    const budgetPuts = h.kube.requests.filter(
      (r) => r.method === 'PUT' && r.path.endsWith(BUDGET_LEASE_NAME),
    );
    expect(budgetPuts).toHaveLength(2);
    expect(h.kube.removals).toHaveLength(4);
    expect(budgetEntries()).toHaveLength(2);
  });

  it('when the loser of the cooldown Lease race had taken a budget slot, then it hands the slot back', async () => {
    h = await startHarness({ ACTION_BUDGET: '5/1h' });
    seedImbalanced(h);
    const replicaB = h.replica('replica-b');
    // Both pass the cooldown check before either creates the cooldown Lease.
    h.kube.fail({
      method: 'POST',
      path: /\/namespaces\/payments\/leases$/,
      delayMs: 300,
      times: 2,
    });

    const [a, b] = await Promise.all([post('api'), post('api', replicaB.app)]);

    expect([a.body.results[0].outcome, b.body.results[0].outcome].sort()).toEqual([
      'rebalanced',
      'skipped',
    ]);
    expect(h.kube.removals).toHaveLength(2);
    expect(budgetEntries()).toEqual([expect.objectContaining({ deployment: 'payments/api' })]);
  });
});
