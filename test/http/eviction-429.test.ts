import { afterEach, describe, expect, it } from '@jest/globals';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

// The API server answers an eviction 429 for two different reasons: a PodDisruptionBudget
// refused it (the Status carries the cause DisruptionBudget), or API Priority and Fairness
// shed load (no cause, Retry-After). Only the first is `pdb-blocked`.

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const post = () => postWebhook(h!.service.app, payload());

async function metric(name: string): Promise<string> {
  const text = await h!.service.registry.metrics();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .join('\n');
}

describe('eviction 429', () => {
  it('when the disruption budget refuses (cause DisruptionBudget), then pdb-blocked and a RebalanceBlocked Event', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.pdbBlocked.add('payments/api-hot');
    h.kube.pdbBlocked.add('payments/api-cold');

    const res = await post();

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'pdb-blocked' });
    expect(h.kube.events.map((e) => e.reason)).toEqual(['RebalanceBlocked']);
  });

  it('when API Priority and Fairness answers 429 (no cause), then it counts as a retryable Kubernetes error (kind server) and the report says removal-failed, never pdb-blocked', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.evictionThrottled.add('payments/api-hot');

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'failed', reason: 'removal-failed' });
    expect(res.body.results[0].pods).toEqual([
      expect.objectContaining({ name: 'api-hot', result: 'failed' }),
      expect.objectContaining({ name: 'api-cold', result: 'not-attempted' }),
    ]);
    expect(JSON.stringify(res.body)).not.toContain('pdb-blocked');
    expect(h.kube.events.map((e) => e.reason)).toEqual(['RebalanceFailed']);
    expect(await metric('pod_rebalancer_upstream_errors_total')).toContain(
      'pod_rebalancer_upstream_errors_total{upstream="kubernetes",kind="server"} 1',
    );
  });
});
