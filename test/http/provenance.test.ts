import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { FakePrometheus } from '../support/fake-prometheus.js';
import {
  type Harness,
  postWebhook,
  seedDeployment,
  seedImbalanced,
  startHarness,
} from '../support/harness.js';
import { payload } from './payload.js';

// ALERT_PROVENANCE=rules (the default): an alert is acted on only when the rule engine has it
// active, labels and pod_rebalancer_* annotations alike. The payload alone proves only that
// Alertmanager sent it, and Alertmanager's API takes alerts from anyone who can reach it.

let h: Harness | undefined;
const extra: FakePrometheus[] = [];
afterEach(async () => {
  await h?.stop();
  h = undefined;
  await Promise.all(extra.splice(0).map((p) => p.stop()));
});

const LABELS = { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' };
const RULE_POLICY = { pod_rebalancer_threshold: '0.3', pod_rebalancer_min_pods: '3' };
/** What a forger writes: a threshold and pod count that switch off the re-verification. */
const FORGED_POLICY = { pod_rebalancer_threshold: '0.000001', pod_rebalancer_min_pods: '2' };
const BALANCED = { 'api-a': 0.5, 'api-b': 0.52 };

/** Posts as a forger would: with the token, but no rule ever fired it. */
const forge = (body: unknown) => postWebhook(h!.service.app, body, { fromRule: false });

/** Nothing written and nothing read from Prometheus: no Lease, no budget, no Event, no removal. */
function expectNothingWritten(): void {
  expect(h!.kube.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  expect(h!.kube.leases.size).toBe(0);
  expect(h!.kube.events).toEqual([]);
  expect(h!.kube.removals).toEqual([]);
  expect(h!.prom.queries).toEqual([]);
}

async function unconfirmedCount(): Promise<string | undefined> {
  const text = (await request(h!.service.app).get('/metrics')).text;
  return /pod_rebalancer_unconfirmed_alerts_total\{alertname="DeploymentCPUImbalance"\} (\d+)/.exec(
    text,
  )?.[1];
}

describe('provenance: an alert no rule has active removes nothing and reads no series', () => {
  it('when no rule has the alert active, then unconfirmed-alert (200), nothing written, counted in a metric', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.ruleAlerts.splice(0);

    const res = await forge(payload([{ labels: LABELS }]));

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'unconfirmed-alert',
      detail: expect.stringContaining('not confirmed by the rule engine'),
    });
    expectNothingWritten();
    expect(await unconfirmedCount()).toBe('1');
  });

  it('when a forged alert lowers the threshold of a balanced Deployment, then its pods stay (the rule fires with another policy)', async () => {
    h = await startHarness();
    seedDeployment(h, { namespace: 'payments', name: 'api', cpu: BALANCED, ruleFires: false });
    h.prom.fireRule({ labels: LABELS, annotations: RULE_POLICY });

    const res = await forge(payload([{ labels: LABELS, annotations: FORGED_POLICY }]));

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      reason: 'unconfirmed-alert',
      detail: expect.stringContaining('other pod_rebalancer_* annotations'),
    });
    expectNothingWritten();
  });

  it('when the forged alert adds a policy annotation the rule does not carry (any pod_rebalancer_* key), then unconfirmed', async () => {
    h = await startHarness();
    seedImbalanced(h);

    const res = await forge(
      payload([{ labels: LABELS, annotations: { pod_rebalancer_rotation: 'one-by-one' } }]),
    );

    expect(res.body.results[0]).toMatchObject({ reason: 'unconfirmed-alert' });
    expectNothingWritten();
  });

  it.each([
    ['the rule has it for another Deployment', { ...LABELS, deployment: 'web' }, LABELS],
    [
      'a label of the rule has another value',
      { ...LABELS, severity: 'critical' },
      { ...LABELS, severity: 'warning' },
    ],
    [
      "the rule's alert does not name the Deployment itself (a label added on the way would choose it)",
      { alertname: 'DeploymentCPUImbalance', namespace: 'payments' },
      LABELS,
    ],
  ])('when %s, then unconfirmed-alert', async (_case, ruleLabels, posted) => {
    h = await startHarness();
    seedDeployment(h, {
      namespace: 'payments',
      name: 'api',
      cpu: { 'api-hot': 1.8, 'api-a': 0.6, 'api-b': 0.62, 'api-cold': 0.05 },
      ruleFires: false,
    });
    h.prom.fireRule({ labels: ruleLabels, annotations: {} });

    const res = await forge(payload([{ labels: posted }]));

    expect(res.body.results[0]).toMatchObject({ reason: 'unconfirmed-alert' });
    expectNothingWritten();
  });

  it('when the rule engine cannot be reached, then 503 with Retry-After and nothing written', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.fail({ rules: true, destroy: true });

    const res = await postWebhook(h.service.app, payload([{ labels: LABELS }]));

    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'prometheus-unavailable',
      detail: expect.stringContaining('rule engine (RULES_URL)'),
    });
    expectNothingWritten();
  });
});

describe('provenance: what a rule fired still acts', () => {
  it("when the rule has the alert active with the alert's policy, and Alertmanager added labels, then it is rebalanced", async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.ruleAlerts.splice(0);
    h.prom.fireRule({ labels: LABELS, annotations: RULE_POLICY });

    // Alertmanager's copy carries external labels the rules API does not show.
    const res = await forge(
      payload([
        {
          labels: { ...LABELS, cluster: 'eu-1', prometheus: 'monitoring/k8s' },
          annotations: RULE_POLICY,
        },
      ]),
    );

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
  });

  it('when the alert is still pending in the rule engine (another replica already fired it), then it is confirmed; inactive is not', async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'web');
    h.prom.ruleAlerts.splice(0);
    h.prom.fireRule({ labels: LABELS, annotations: {}, state: 'pending' });
    h.prom.fireRule({
      labels: { ...LABELS, deployment: 'web' },
      annotations: {},
      state: 'inactive',
    });

    const res = await forge(
      payload([{ labels: LABELS }, { labels: { ...LABELS, deployment: 'web' } }]),
    );

    expect(res.body.results.map((r: { reason: string }) => r.reason)).toEqual([
      'imbalanced',
      'unconfirmed-alert',
    ]);
  });

  it('when a payload names three Deployments, then one rules request serves them all, asking only for our rules', async () => {
    h = await startHarness();
    for (const name of ['a', 'b', 'c']) seedImbalanced(h, 'payments', name);

    const res = await postWebhook(
      h.service.app,
      payload(['a', 'b', 'c'].map((deployment) => ({ labels: { ...LABELS, deployment } }))),
    );

    expect(res.body.results.map((r: { outcome: string }) => r.outcome)).toEqual([
      'rebalanced',
      'rebalanced',
      'rebalanced',
    ]);
    expect(h.prom.rulesRequests).toHaveLength(1);
    expect(h.prom.rulesRequests[0]!.params).toMatchObject({
      type: 'alert',
      'rule_name[]': 'DeploymentCPUImbalance',
    });
  });

  it('when notifications repeat inside the cooldown, then no rules request is made (the cache-only gates come first)', async () => {
    h = await startHarness();
    seedImbalanced(h);
    await postWebhook(h.service.app, payload([{ labels: LABELS }]));
    expect(h.prom.rulesRequests).toHaveLength(1);

    for (let i = 0; i < 5; i++) {
      const res = await postWebhook(h.service.app, payload([{ labels: LABELS }]));
      expect(res.body.results[0]).toMatchObject({ reason: 'cooldown' });
    }

    expect(h.prom.rulesRequests).toHaveLength(1);
  });

  it('when ALERT_PROVENANCE=off, then an alert with the token is trusted and the rule engine is never asked', async () => {
    h = await startHarness({ ALERT_PROVENANCE: 'off' });
    seedImbalanced(h);
    h.prom.ruleAlerts.splice(0);

    const res = await forge(payload([{ labels: LABELS }]));

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.prom.rulesRequests).toEqual([]);
  });
});

describe('provenance against other rule engines', () => {
  it("when PROMETHEUS_URL carries a path prefix (Mimir's /prometheus), then the rules are asked below it, with the tenant header", async () => {
    const mimir = await new FakePrometheus().start();
    extra.push(mimir);
    mimir.pathPrefix = '/prometheus';
    mimir.behaviour = { tenant: 'team-a' };
    h = await startHarness({
      PROMETHEUS_URL: `${mimir.url}/prometheus`,
      PROMETHEUS_HEADERS: 'X-Scope-OrgID=team-a',
    });
    seedImbalanced({ kube: h.kube, prom: mimir });

    const res = await postWebhook(h.service.app, payload([{ labels: LABELS }]), {
      fromRule: false,
    });

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(mimir.rulesRequests).toHaveLength(1);
    expect(mimir.rulesRequests[0]!.tenant).toBe('team-a');
  });

  it('when RULES_URL points at vmalert, then its answer confirms the alert and the queries still go to PROMETHEUS_URL', async () => {
    const vmalert = await new FakePrometheus().start();
    extra.push(vmalert);
    vmalert.rulesStyle = 'vmalert';
    h = await startHarness({ RULES_URL: vmalert.url });
    seedImbalanced(h);
    vmalert.fireRule({ labels: LABELS, annotations: {} });

    const res = await forge(payload([{ labels: LABELS }]));

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(vmalert.rulesRequests).toHaveLength(1);
    expect(h.prom.rulesRequests).toEqual([]);
    expect(h.prom.queries.length).toBeGreaterThan(0);
  });
});
