import { afterEach, describe, expect, it } from '@jest/globals';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

// One Alertmanager (or a Thanos/Mimir ruler) for many clusters: the same namespace/deployment
// exists in each. An alert for another cluster must not make this one act.

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const post = (body: unknown) => postWebhook(h!.service.app, body);

const alertIn = (cluster: string | undefined, fingerprint: string) => ({
  fingerprint,
  labels: {
    alertname: 'DeploymentCPUImbalance',
    namespace: 'payments',
    deployment: 'api',
    ...(cluster ? { cluster } : {}),
  },
});

describe('CLUSTER / CLUSTER_LABEL', () => {
  it('when an alert names another cluster, then it is skipped other-cluster before any query or API call', async () => {
    h = await startHarness({ CLUSTER: 'eu-1' });
    seedImbalanced(h);

    const res = await post(payload([alertIn('us-2', 'f-us')]));

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({ fingerprint: 'f-us', outcome: 'skipped', reason: 'other-cluster' }),
    ]);
    expect(h.prom.queries).toEqual([]);
    expect(h.kube.requests).toEqual([]);
  });

  it('when CLUSTER is set and an alert carries no cluster label, then it is skipped other-cluster (its origin cannot be told), saying how to add the label', async () => {
    h = await startHarness({ CLUSTER: 'eu-1' });
    seedImbalanced(h);

    const res = await post(payload([alertIn(undefined, 'f-none')]));

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({
        fingerprint: 'f-none',
        outcome: 'skipped',
        reason: 'other-cluster',
        detail: expect.stringContaining('external_labels'),
      }),
    ]);
    expect(h.prom.queries).toEqual([]);
    expect(h.prom.rulesRequests).toEqual([]);
    expect(h.kube.requests).toEqual([]);
  });

  it("when one payload holds this cluster's alert and another's, then only this cluster's is acted on", async () => {
    h = await startHarness({ CLUSTER: 'eu-1' });
    seedImbalanced(h);

    const res = await post(payload([alertIn('us-2', 'f-us'), alertIn('eu-1', 'f-eu')]));

    const byFingerprint = Object.fromEntries(
      (res.body.results as { fingerprint: string; reason: string }[]).map((r) => [
        r.fingerprint,
        r.reason,
      ]),
    );
    expect(byFingerprint).toEqual({ 'f-eu': 'imbalanced', 'f-us': 'other-cluster' });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when CLUSTER_LABEL names another label, then that label decides', async () => {
    h = await startHarness({ CLUSTER: 'eu-1', CLUSTER_LABEL: 'k8s_cluster' });
    seedImbalanced(h);
    const alert = alertIn(undefined, 'f1');

    const res = await post(
      payload([{ ...alert, labels: { ...alert.labels, k8s_cluster: 'us-2', cluster: 'eu-1' } }]),
    );

    expect(res.body.results[0]).toMatchObject({ reason: 'other-cluster' });
  });

  it("when CLUSTER_IN_QUERY is on, then the verification query selects only this cluster's series", async () => {
    h = await startHarness({ CLUSTER: 'eu-1', CLUSTER_IN_QUERY: 'true' });
    seedImbalanced(h);

    await post(payload([alertIn('eu-1', 'f1')]));

    expect(h.prom.queries[0]!.query).toContain('cluster="eu-1"');
  });

  it('when CLUSTER_IN_QUERY is off (the default), then the query has no cluster matcher', async () => {
    h = await startHarness({ CLUSTER: 'eu-1' });
    seedImbalanced(h);

    await post(payload([alertIn('eu-1', 'f1')]));

    expect(h.prom.queries[0]!.query).not.toContain('cluster=');
  });
});
