import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { seedImbalanced, startHarness, TOKEN, type Harness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const post = () =>
  request(h.service.app).post('/webhook').set('Authorization', `Bearer ${TOKEN}`).send(payload());

function microTime(msAgo: number): string {
  return new Date(Date.now() - msAgo).toISOString().replace('Z', '000Z');
}

function existingLease(acquiredMsAgo: number) {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'pod-rebalancer-api', namespace: 'payments', resourceVersion: '7' },
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
    h.kube.leases.set('payments/pod-rebalancer-api', existingLease(20 * 60_000));

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    const put = h.kube.requests.find(
      (r) => r.method === 'PUT' && r.path.endsWith('/leases/pod-rebalancer-api'),
    );
    expect(put?.body?.metadata?.resourceVersion).toBe('7');
    expect(h.kube.leases.get('payments/pod-rebalancer-api')?.spec.holderIdentity).toBe('replica-a');
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when the Lease was taken less than one cooldown ago, then it is a cooldown and Prometheus is not even asked', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('payments/pod-rebalancer-api', existingLease(5 * 60_000));

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.prom.queries).toHaveLength(0);
    expect(h.kube.removals).toEqual([]);
  });

  it('when another writer changes the Lease after we read it, then our update gets 409 and nothing is removed', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('payments/pod-rebalancer-api', existingLease(20 * 60_000));
    h.kube.afterRequest = (method, path) => {
      if (method === 'GET' && path.endsWith('/leases/pod-rebalancer-api')) {
        h.kube.leases.get('payments/pod-rebalancer-api')!.metadata.resourceVersion = '8';
      }
    };

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toEqual([]);
  });

  it('when the Lease is deleted between our read and our update, then nothing is removed and nothing fails', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.leases.set('payments/pod-rebalancer-api', existingLease(20 * 60_000));
    h.kube.afterRequest = (method, path) => {
      if (method === 'GET' && path.endsWith('/leases/pod-rebalancer-api'))
        h.kube.leases.delete('payments/pod-rebalancer-api');
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
