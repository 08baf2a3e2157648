import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';

let h: Harness;
afterEach(() => h?.stop());

/** One firing DeploymentCPUImbalance for payments/api carrying these annotations. */
function alertWith(annotations: Record<string, string>, deployment = 'api') {
  return {
    version: '4',
    status: 'firing',
    receiver: 'pod-rebalancer',
    groupKey: '{}:{}',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
        annotations,
        startsAt: '2026-11-28T16:44:56.709Z',
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: `f-${deployment}`,
      },
    ],
  };
}

const post = (body: unknown) => postWebhook(h.service.app, body);

// seedImbalanced: stddev 0.576 cores over a mean of 0.73 cores (relative 0.79).
describe('the service verifies against the policy the alert carries', () => {
  it('when the alert says threshold 0.8 cores, then a 0.58-core spread is below it, though the configuration says 0.3', async () => {
    h = await startHarness({ CPU_STDDEV_THRESHOLD: '0.3' });
    seedImbalanced(h);

    const res = await post(alertWith({ pod_rebalancer_threshold: '0.8' }));

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'below-threshold',
      detail: expect.stringMatching(/CPU stddev 0\.576 cores is not above 0\.8/),
      policy: {
        threshold: 0.8,
        measure: 'stddev',
        minPods: 3,
        source: {
          threshold: 'alert annotation',
          measure: 'configuration',
          minPods: 'configuration',
        },
      },
    });
    expect(h.kube.removals).toEqual([]);
  });

  it('when the alert says threshold 0.5, then it acts although CPU_STDDEV_THRESHOLD is 0.7, and says why', async () => {
    h = await startHarness({ CPU_STDDEV_THRESHOLD: '0.7' });
    seedImbalanced(h);

    const res = await post(
      alertWith({ pod_rebalancer_threshold: '0.5', pod_rebalancer_min_pods: '4' }),
    );

    expect(res.body.results[0]).toMatchObject({
      outcome: 'rebalanced',
      detail: 'CPU stddev 0.576 cores is above the threshold 0.5 (alert annotation)',
      policy: { threshold: 0.5, minPods: 4, source: { minPods: 'alert annotation' } },
    });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when the alert carries no policy, then CPU_STDDEV_THRESHOLD applies and the report says so', async () => {
    h = await startHarness({ CPU_STDDEV_THRESHOLD: '0.7' });
    seedImbalanced(h);

    const res = await post(alertWith({ summary: 'no policy here' }));

    expect(res.body.results[0]).toMatchObject({
      reason: 'below-threshold',
      policy: {
        threshold: 0.7,
        measure: 'stddev',
        source: { threshold: 'configuration', measure: 'configuration', minPods: 'configuration' },
      },
    });
  });

  it('when the measure is relative_stddev, then stddev ÷ mean (0.79) is compared: above 0.5 acts, above 0.9 does not', async () => {
    h = await startHarness();
    seedImbalanced(h);
    seedImbalanced(h, 'payments', 'worker');

    const acted = await post(
      alertWith({ pod_rebalancer_threshold: '0.5', pod_rebalancer_measure: 'relative_stddev' }),
    );
    const held = await post(
      alertWith(
        { pod_rebalancer_threshold: '0.9', pod_rebalancer_measure: 'relative_stddev' },
        'worker',
      ),
    );

    expect(acted.body.results[0]).toMatchObject({
      outcome: 'rebalanced',
      detail: 'CPU relative stddev 0.789 is above the threshold 0.5 (alert annotation)',
      policy: { measure: 'relative_stddev', source: { measure: 'alert annotation' } },
    });
    expect(held.body.results[0]).toMatchObject({
      reason: 'below-threshold',
      detail: expect.stringMatching(/relative stddev 0\.789 is not above 0\.9/),
    });
  });
});

describe('when the rule carries a policy that does not parse', () => {
  it('then 200 invalid-policy, counted by alertname, logged with the values, before any API call or query', async () => {
    h = await startHarness();
    seedImbalanced(h);

    const res = await post(
      alertWith({ pod_rebalancer_threshold: '0.3 cores', pod_rebalancer_measure: 'stddev' }),
    );

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'invalid-policy',
      detail: expect.stringContaining(
        'pod_rebalancer_threshold "0.3 cores" is not a positive number',
      ),
    });
    expect(h.kube.requests).toEqual([]);
    expect(h.prom.queries).toEqual([]);
    const metrics = await request(h.service.app).get('/metrics');
    expect(metrics.text).toContain(
      'pod_rebalancer_invalid_policy_total{alertname="DeploymentCPUImbalance"} 1',
    );
    expect(h.logs.entries).toContainEqual(
      expect.objectContaining({
        message: 'the alert rule carries an invalid policy',
        annotations: { pod_rebalancer_threshold: '0.3 cores', pod_rebalancer_measure: 'stddev' },
      }),
    );
  });
});
