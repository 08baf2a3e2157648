import request from 'supertest';
import { waitFor } from '../support/processes.js';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  type Harness,
  postWebhook,
  seedDeployment,
  seedImbalanced,
  startHarness,
} from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const post = (namespace: string, deployment: string) =>
  postWebhook(
    h.service.app,
    payload([{ labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment } }]),
  );

/** The imbalanced CPU of seedImbalanced, for a Deployment seeded with other options. */
const ready = async (harness: Harness) =>
  (await request(harness.service.app).get('/readyz')).status === 200;

const IMBALANCED = { 'x-hot': 1.8, 'x-a': 0.6, 'x-b': 0.62, 'x-c': 0.58, 'x-cold': 0.05 };

/** No Prometheus query, no Lease write, nothing removed. */
function expectUntouched(): void {
  expect(h.prom.queries).toEqual([]);
  expect(h.kube.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  expect(h.kube.leases.size).toBe(0);
  expect(h.kube.removals).toEqual([]);
}

describe('out-of-scope: decided before any Prometheus query or write, naming the rule', () => {
  it('when the Deployment is in kube-system (always out of scope), then skipped without even reading it', async () => {
    h = await startHarness();
    seedImbalanced(h, 'kube-system', 'coredns');

    const res = await post('kube-system', 'coredns');

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'out-of-scope',
      detail: 'namespace kube-system is a kube-* namespace (always out of scope)',
    });
    expect(h.kube.requests).toEqual([]);
    expectUntouched();
  });

  it.each([
    ['kube-system', 'metrics-server', 'a kube-* namespace'],
    ['kube-public', 'web', 'a kube-* namespace'],
    ['pod-rebalancer', 'pod-rebalancer', "STATE_NAMESPACE, the service's own"],
    ['monitoring', 'prometheus', 'in EXCLUDE_NAMESPACES'],
  ])(
    'when EXCLUDE_NAMESPACES=monitoring, then %s stays out of scope too (it adds to the defaults, never replaces them)',
    async (namespace, name, why) => {
      h = await startHarness({ EXCLUDE_NAMESPACES: 'monitoring' });
      seedImbalanced(h, namespace, name);

      const res = await post(namespace, name);

      expect(res.body.results[0]).toMatchObject({
        reason: 'out-of-scope',
        detail: expect.stringContaining(why),
      });
      expect(h.kube.requests).toEqual([]);
      expectUntouched();
    },
  );

  it('when STATE_NAMESPACE is moved, then the new one is out of scope and the default name is not special', async () => {
    h = await startHarness({ STATE_NAMESPACE: 'rebalancer-system' });
    seedImbalanced(h, 'rebalancer-system', 'api');
    seedImbalanced(h, 'pod-rebalancer', 'api');

    const own = await post('rebalancer-system', 'api');
    expect(own.body.results[0]).toMatchObject({
      reason: 'out-of-scope',
      detail: expect.stringContaining('STATE_NAMESPACE'),
    });
    expectUntouched();
    const other = await post('pod-rebalancer', 'api');
    expect(other.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });

  it("when admission gave one pod a system-critical priority the template does not carry, then out-of-scope from the pod's own spec, before any query or write", async () => {
    h = await startHarness();
    seedDeployment(h, {
      namespace: 'payments',
      name: 'agent',
      cpu: IMBALANCED,
      pods: { 'x-a': { priority: 2_000_001_000 } },
    });

    const res = await post('payments', 'agent');

    expect(res.body.results[0]).toMatchObject({
      reason: 'out-of-scope',
      detail: expect.stringContaining('pod x-a is system-critical (priority 2000001000'),
    });
    expectUntouched();
  });

  it('when NAMESPACES does not list the namespace, then out-of-scope; a listed one is acted on', async () => {
    h = await startHarness({ NAMESPACES: 'payments' });
    seedImbalanced(h, 'shop', 'web');
    seedImbalanced(h, 'payments', 'api');

    const outside = await post('shop', 'web');
    expect(outside.body.results[0]).toMatchObject({
      reason: 'out-of-scope',
      detail: 'namespace shop is not in NAMESPACES',
    });
    expectUntouched();

    const inside = await post('payments', 'api');
    expect(inside.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });

  it('when REQUIRE_OPT_IN=true, then only a Deployment annotated pod-rebalancer.io/enabled: "true" is acted on', async () => {
    h = await startHarness({ REQUIRE_OPT_IN: 'true' });
    seedDeployment(h, { namespace: 'payments', name: 'plain', cpu: IMBALANCED });

    const refused = await post('payments', 'plain');
    expect(refused.body.results[0]).toMatchObject({
      reason: 'out-of-scope',
      detail: expect.stringContaining('REQUIRE_OPT_IN is true'),
    });
    expectUntouched();

    seedDeployment(h, {
      namespace: 'payments',
      name: 'opted',
      cpu: Object.fromEntries(Object.entries(IMBALANCED).map(([k, v]) => [`o${k}`, v])),
      annotations: { 'pod-rebalancer.io/enabled': 'true' },
    });
    const accepted = await post('payments', 'opted');
    expect(accepted.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });

  it.each([
    ['priorityClassName system-cluster-critical', { priorityClassName: 'system-cluster-critical' }],
    ['priorityClassName system-node-critical', { priorityClassName: 'system-node-critical' }],
    ['priority 2000000000', { priority: 2_000_000_000 }],
  ])('when the pod template has %s, then out-of-scope as system-critical', async (_name, facts) => {
    h = await startHarness();
    seedDeployment(h, { namespace: 'payments', name: 'agent', cpu: IMBALANCED, ...facts });

    const res = await post('payments', 'agent');

    expect(res.body.results[0]).toMatchObject({
      reason: 'out-of-scope',
      detail: expect.stringContaining('system-critical'),
    });
    expectUntouched();
  });

  it.each([
    ['priorityClassName system-cluster-critical', { priorityClassName: 'system-cluster-critical' }],
    ['priority 2000000000', { priority: 2_000_000_000 }],
  ])(
    'when the pod template has %s and the Deployment is read from the watch cache (as serve does), then still out-of-scope',
    async (_name, facts) => {
      h = await startHarness({}, { watchCaches: true });
      seedDeployment(h, { namespace: 'payments', name: 'agent', cpu: IMBALANCED, ...facts });
      // Seeded before the caches sync: once ready, the Deployment is read from memory only.
      await waitFor('the watch caches to sync', () => ready(h), 5000, 25);

      const res = await post('payments', 'agent');

      expect(res.body.results[0]).toMatchObject({
        reason: 'out-of-scope',
        detail: expect.stringContaining('system-critical'),
      });
      expect(h.kube.requests.some((r) => r.path.endsWith('/deployments/agent'))).toBe(false);
      expect(h.kube.removals).toEqual([]);
    },
  );
});
