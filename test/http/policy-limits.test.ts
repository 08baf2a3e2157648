import { afterEach, describe, expect, it } from '@jest/globals';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const LABELS = { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' };

describe('POLICY_LIMITS: bounds on what a (team-owned) rule may ask for', () => {
  it('when a rule the engine confirms asks for a threshold below the bound, then invalid-policy naming the bound, before any call or query', async () => {
    h = await startHarness({ POLICY_LIMITS: 'threshold>=0.05,min_pods>=3' });
    seedImbalanced(h);

    const res = await postWebhook(
      h.service.app,
      payload([{ labels: LABELS, annotations: { pod_rebalancer_threshold: '0.01' } }]),
    );

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'invalid-policy',
      detail: expect.stringContaining('outside POLICY_LIMITS threshold>=0.05'),
    });
    expect(h.prom.queries).toEqual([]);
    expect(h.kube.requests).toEqual([]);
  });

  it('when the rule asks within the bounds, then it acts as without them', async () => {
    h = await startHarness({ POLICY_LIMITS: 'threshold>=0.05,min_pods>=3' });
    seedImbalanced(h);

    const res = await postWebhook(
      h.service.app,
      payload([{ labels: LABELS, annotations: { pod_rebalancer_threshold: '0.1' } }]),
    );

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });
});
