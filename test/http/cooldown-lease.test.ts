import { afterEach, describe, expect, it } from '@jest/globals';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const post = () => postWebhook(h.service.app, payload());

function microTime(msAgo: number): string {
  return new Date(Date.now() - msAgo).toISOString().replace('Z', '000Z');
}

function existingLease(acquiredMsAgo: number, uid = 'uid-deploy-api') {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: 'payments.api',
      namespace: 'pod-rebalancer',
      resourceVersion: '7',
      labels: { 'pod-rebalancer.io/namespace': 'payments', 'pod-rebalancer.io/deployment': 'api' },
      annotations: { 'pod-rebalancer.io/deployment-uid': uid } as Record<string, string>,
    },
    spec: {
      holderIdentity: 'crashed-replica',
      acquireTime: microTime(acquiredMsAgo),
      renewTime: microTime(acquiredMsAgo),
      leaseDurationSeconds: 900,
    },
  };
}

describe('the cooldown Lease', () => {
  it('when a previous action (perhaps by a crashed replica) is older than the cooldown, then it acts and replaces the Lease at its resourceVersion', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('pod-rebalancer/payments.api', existingLease(20 * 60_000));

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    const put = h.kube.requests.find(
      (r) => r.method === 'PUT' && r.path.endsWith('/leases/payments.api'),
    );
    expect(put?.body?.metadata?.resourceVersion).toBe('7');
    expect(h.kube.leases.get('pod-rebalancer/payments.api')?.spec.holderIdentity).toBe('replica-a');
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when the Lease was taken less than one cooldown ago, then it is a cooldown and Prometheus is not even asked', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('pod-rebalancer/payments.api', existingLease(5 * 60_000));

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.prom.queries).toHaveLength(0);
    expect(h.kube.removals).toEqual([]);
  });

  it('when another writer changes the Lease after we read it, then our update gets 409 and nothing is removed', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('pod-rebalancer/payments.api', existingLease(20 * 60_000));
    h.kube.afterRequest = (method, path) => {
      if (method === 'GET' && path.endsWith('/leases/payments.api')) {
        h.kube.leases.get('pod-rebalancer/payments.api')!.metadata.resourceVersion = '8';
      }
    };

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toEqual([]);
  });

  it('when the Lease is deleted between our read and our update, then nothing is removed and nothing fails', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('pod-rebalancer/payments.api', existingLease(20 * 60_000));
    h.kube.afterRequest = (method, path) => {
      if (method === 'GET' && path.endsWith('/leases/payments.api'))
        h.kube.leases.delete('pod-rebalancer/payments.api');
    };

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toEqual([]);
  });

  it('when the eviction call is lost after the Lease was taken, then the retried alert removes nothing', async () => {
    h = await startHarness();
    seedImbalanced(h);
    // The first attempt takes the Lease, then the connection to the API server drops at the eviction.
    h.kube.fail({ method: 'POST', path: /\/eviction$/, destroy: true });
    await post();
    const removalsAfterCrash = h.kube.removals.length;

    const retry = await post();

    expect(removalsAfterCrash).toBe(0);
    expect(retry.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toEqual([]);
  });
});

describe('the cooldown Lease of a Deployment created again under the same name', () => {
  it('when the Lease was written for an earlier Deployment (another uid), then the new one starts fresh: no cooldown, and the Lease is replaced with its uid', async () => {
    h = await startHarness();
    seedImbalanced(h);
    const old = existingLease(5 * 60_000, 'uid-of-the-deleted-deployment');
    old.metadata.annotations['pod-rebalancer.io/ineffective'] = 'stopped after 3 actions';
    h.kube.leases.set('pod-rebalancer/payments.api', old);

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    const lease = h.kube.leases.get('pod-rebalancer/payments.api')!;
    expect(lease.metadata.annotations).toMatchObject({
      'pod-rebalancer.io/deployment-uid': 'uid-deploy-api',
      'pod-rebalancer.io/consecutive-ineffective': '0',
    });
    expect(lease.metadata.annotations['pod-rebalancer.io/ineffective']).toBeUndefined();
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when STATE_NAMESPACE is set, then the Lease is written there and nowhere else', async () => {
    h = await startHarness({ STATE_NAMESPACE: 'ops-state' });
    seedImbalanced(h);

    await post();

    expect([...h.kube.leases.keys()].sort()).toEqual([
      'ops-state/payments.api',
      'ops-state/pod-rebalancer-action-budget',
    ]);
    const writes = h.kube.requests.filter((r) => r.path.includes('/leases') && r.method !== 'GET');
    expect(writes.every((r) => r.path.includes('/namespaces/ops-state/'))).toBe(true);
  });
});
