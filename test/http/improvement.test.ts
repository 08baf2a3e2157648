import { afterEach, describe, expect, it } from '@jest/globals';
import { postWebhook, seedDeployment, startHarness, type Harness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

/** payments/api in two camps: 6 pods at 0.95 cores, 6 at 0.12; two restarts lower it 8.7%. */
function seedTwoCamps(): void {
  const cpu = Object.fromEntries(
    Array.from({ length: 12 }, (_, i) => [`api-${i}`, i < 6 ? 0.95 : 0.12]),
  );
  seedDeployment(h, { namespace: 'payments', name: 'api', cpu });
}

async function postFiring(annotations: Record<string, string> = {}) {
  const response = await postWebhook(h.service.app, payload([{ annotations }]));
  expect(response.status).toBe(200);
  return response.body.results[0];
}

describe('an action must be predicted to help (MIN_IMPROVEMENT)', () => {
  it('when the pods sit in two camps, then skipped no-improvement-expected with both figures, and nothing written or removed', async () => {
    h = await startHarness();
    seedTwoCamps();

    const result = await postFiring();

    expect(result).toMatchObject({
      outcome: 'skipped',
      reason: 'no-improvement-expected',
      detail:
        'replacing the two chosen pods by pods at the mean of the others would take the CPU stddev 0.415 cores to 0.379, 8.7% lower; at least 10% is needed',
      policy: { minImprovement: 0.1, source: { minImprovement: 'configuration' } },
    });
    expect(h.kube.removals).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
  });

  it('when the rule asks for at least 5% (pod_rebalancer_min_improvement), then it acts and the report says where that came from', async () => {
    h = await startHarness();
    seedTwoCamps();

    const result = await postFiring({ pod_rebalancer_min_improvement: '5%' });

    expect(result).toMatchObject({
      outcome: 'rebalanced',
      policy: { minImprovement: 0.05, source: { minImprovement: 'alert annotation' } },
    });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when MIN_IMPROVEMENT=5% and the rule says nothing, then the configuration decides', async () => {
    h = await startHarness({ MIN_IMPROVEMENT: '5%' });
    seedTwoCamps();

    expect(await postFiring()).toMatchObject({
      outcome: 'rebalanced',
      policy: { minImprovement: 0.05, source: { minImprovement: 'configuration' } },
    });
  });

  it('when the rule carries a minimum improvement that does not parse, then invalid-policy naming it', async () => {
    h = await startHarness();
    seedTwoCamps();

    expect(await postFiring({ pod_rebalancer_min_improvement: '10' })).toMatchObject({
      outcome: 'skipped',
      reason: 'invalid-policy',
      detail: expect.stringContaining('pod_rebalancer_min_improvement "10"'),
    });
  });
});
