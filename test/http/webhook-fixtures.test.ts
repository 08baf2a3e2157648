import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { seedImbalanced, startHarness, TOKEN, type Harness } from '../support/harness.js';
import { fixtureText } from './fixtures.js';

const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describe('POST /webhook with real Alertmanager 0.25 payloads', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'shop', 'web');
  });
  afterEach(() => h.stop());

  const post = (name: string) =>
    request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('Content-Type', 'application/json')
      .send(fixtureText(name));

  it('when one Deployment fires, then its highest- and lowest-CPU pods are evicted and nothing else', async () => {
    const res = await post('firing-single.json');

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({
        fingerprint: 'd9600f0b57164017',
        namespace: 'payments',
        deployment: 'api',
        outcome: 'rebalanced',
        reason: 'imbalanced',
        pods: [
          { name: 'api-hot', cpu: 1.8, role: 'highest', result: 'evicted' },
          { name: 'api-cold', cpu: 0.05, role: 'lowest', result: 'evicted' },
        ],
      }),
    ]);
    expect(res.body.results[0].stats).toMatchObject({ count: 5, min: 0.05, max: 1.8 });
    expect(h.kube.removals).toEqual([
      { namespace: 'payments', name: 'api-hot', via: 'eviction' },
      { namespace: 'payments', name: 'api-cold', via: 'eviction' },
    ]);
  });

  it('when pods are evicted, then the eviction carries the measured pod uid as a precondition', async () => {
    await post('firing-single.json');

    const evictions = h.kube.requests.filter((r) => r.path.endsWith('/eviction'));
    expect(evictions.map((r) => r.body?.deleteOptions?.preconditions?.uid)).toEqual([
      'uid-api-hot',
      'uid-api-cold',
    ]);
  });

  it('when it acts, then the cooldown Lease is taken in the state namespace, naming the Deployment and its uid, with MicroTime times', async () => {
    await post('firing-single.json');

    const lease = h.kube.leases.get('pod-rebalancer/payments.api');
    expect(lease?.metadata.labels).toMatchObject({
      'pod-rebalancer.io/namespace': 'payments',
      'pod-rebalancer.io/deployment': 'api',
    });
    expect(lease?.metadata.annotations['pod-rebalancer.io/deployment-uid']).toBe('uid-deploy-api');
    // An owner in another namespace is invalid: the sweep removes Leases of deleted Deployments.
    expect(lease?.metadata.ownerReferences).toBeUndefined();
    expect([...h.kube.leases.keys()]).toEqual(['pod-rebalancer/payments.api']);
    expect(lease?.spec.acquireTime).toMatch(MICRO_TIME);
    expect(lease?.spec.leaseDurationSeconds).toBe(15 * 60);
    expect(JSON.parse(lease?.metadata.annotations['pod-rebalancer.io/last-action'])).toMatchObject({
      pods: ['api-hot', 'api-cold'],
      dryRun: false,
    });
  });

  it('when it acts, then a Rebalanced Event on the Deployment names both pods', async () => {
    await post('firing-single.json');

    expect(h.kube.events).toHaveLength(1);
    expect(h.kube.events[0]).toMatchObject({
      type: 'Normal',
      reason: 'Rebalanced',
      involvedObject: {
        kind: 'Deployment',
        name: 'api',
        namespace: 'payments',
        uid: 'uid-deploy-api',
      },
    });
    expect(h.kube.events[0]!.message).toContain('api-hot');
    expect(h.kube.events[0]!.message).toContain('api-cold');
    expect(h.kube.events[0]!.eventTime).toMatch(MICRO_TIME);
  });

  it('when two Deployments fire in one envelope, then each loses its own two pods', async () => {
    const res = await post('firing-two-deployments.json');

    expect(res.status).toBe(200);
    expect(
      res.body.results.map((r: { deployment: string; outcome: string }) => [
        r.deployment,
        r.outcome,
      ]),
    ).toEqual([
      ['api', 'rebalanced'],
      ['web', 'rebalanced'],
    ]);
    expect(h.kube.removals.map((r) => `${r.namespace}/${r.name}`).sort()).toEqual([
      'payments/api-cold',
      'payments/api-hot',
      'shop/web-cold',
      'shop/web-hot',
    ]);
  });

  it('when the envelope fires but one alert inside is resolved, then only the firing one acts', async () => {
    const res = await post('mixed-firing-and-resolved.json');

    expect(res.body.results).toEqual([
      expect.objectContaining({ deployment: 'api', outcome: 'rebalanced' }),
      expect.objectContaining({ deployment: 'web', outcome: 'skipped', reason: 'resolved' }),
    ]);
    expect(h.kube.removals.every((r) => r.namespace === 'payments')).toBe(true);
  });

  it('when the alert is resolved, then it is acknowledged and neither Prometheus nor a pod is touched', async () => {
    const res = await post('resolved.json');

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({
        fingerprint: '7873796f262841b2',
        outcome: 'skipped',
        reason: 'resolved',
      }),
    ]);
    expect(h.prom.queries).toHaveLength(0);
    expect(h.kube.requests).toHaveLength(0);
  });

  it('when Alertmanager truncated the group, then the alerts it did send are handled', async () => {
    const res = await post('truncated.json');

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      expect.objectContaining({ deployment: 'api', outcome: 'rebalanced' }),
    ]);
  });
});
