import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { payload } from '../http/payload.js';
import type { Fault } from '../support/fake-kube.js';
import type { PrometheusFault } from '../support/fake-prometheus.js';
import {
  type Harness,
  postWebhook,
  seedImbalanced,
  startHarness,
  TOKEN,
} from '../support/harness.js';
import { buildDist, freePort, killIfRunning, waitFor } from '../support/processes.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/** The cooldown Lease of payments/api; the action budget's Lease sits beside it in pod-rebalancer. */
const COOLDOWN = /^payments\.api$/;

const post = (app: Harness['service']['app']) => postWebhook(app, payload());

const evictions = (harness: Harness) =>
  harness.kube.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/eviction')).length;

const vector = (series: unknown[]) =>
  JSON.stringify({ status: 'success', data: { resultType: 'vector', result: series } });

describe('Prometheus misbehaves: a defined outcome, never a 500, nothing touched, and the retry acts once', () => {
  const matrix = JSON.stringify({
    status: 'success',
    data: { resultType: 'matrix', result: [{ metric: { pod: 'api-hot' }, values: [[1, '1']] }] },
  });
  const UNAVAILABLE = 'prometheus-unavailable';
  it.each<[string, number, string, PrometheusFault]>([
    ['a 502 with an HTML page from a proxy', 503, UNAVAILABLE, { status: 502, rawBody: '<html>' }],
    ['a 200 with an HTML page', 503, UNAVAILABLE, { rawBody: '<html><body>Sign in</body></html>' }],
    ['a 200 with truncated JSON', 503, UNAVAILABLE, { rawBody: '{"status":"succ' }],
    [
      'a 200 with {"status":"success"} and no data',
      503,
      UNAVAILABLE,
      { rawBody: '{"status":"success"}' },
    ],
    ['a 200 whose result is null', 503, UNAVAILABLE, { rawBody: vector(null as never) }],
    [
      'a 200 with status "error"',
      503,
      UNAVAILABLE,
      { rawBody: '{"status":"error","error":"oops"}' },
    ],
    ['the connection dropped without an answer', 503, UNAVAILABLE, { destroy: true }],
    ['a 200 with a matrix instead of a vector', 200, 'prometheus-error', { rawBody: matrix }],
    [
      'a 400 (our query is wrong)',
      200,
      'prometheus-error',
      { status: 400, rawBody: '{"status":"error","errorType":"bad_data","error":"parse error"}' },
    ],
  ])('when Prometheus answers %s, then %i with failed/%s', async (_name, status, reason, fault) => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.fail(fault);

    const res = await post(h.service.app);
    const retry = await post(h.service.app);

    expect(res.status).toBe(status);
    expect(res.body.results[0]).toMatchObject({ outcome: 'failed', reason });
    expect(res.headers['retry-after']).toBe(status === 503 ? '10' : undefined);
    expect(retry.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(evictions(h)).toBe(2);
  });

  it.each([
    ['NaN, Inf and negative values', ['NaN', '+Inf', '-0.5']],
    ['values that are not numbers', ['fast', '', '1e999']],
  ])(
    'when three of five pods have %s, then they count as without a sample: incomplete-metrics',
    async (_name, bad) => {
      h = await startHarness();
      seedImbalanced(h);
      const pods = ['api-hot', 'api-a', 'api-b', 'api-c', 'api-cold'];
      const values = ['1.8', '0.6', ...bad];
      h.prom.fail({
        rawBody: vector(pods.map((pod, i) => ({ metric: { pod }, value: [1, values[i]] }))),
      });

      const res = await post(h.service.app);

      expect(res.status).toBe(200);
      expect(res.body.results[0]).toMatchObject({
        outcome: 'skipped',
        reason: 'incomplete-metrics',
        detail: expect.stringContaining('(api-b, api-c, api-cold)'),
      });
      expect(evictions(h)).toBe(0);
    },
  );

  it('when series come without a pod label or for pods that are not ours, then they are ignored (and ours without one are missing)', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.fail({
      rawBody: vector([
        { metric: {}, value: [1, '9'] },
        { metric: { pod: 'intruder' }, value: [1, '9'] },
        { metric: { pod: 'api-hot' }, value: [1, '1.8'] },
      ]),
    });

    const res = await post(h.service.app);

    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'incomplete-metrics',
      detail: expect.stringMatching(/^4 of 5 pods have no CPU sample/),
    });
    expect(evictions(h)).toBe(0);
  });
});

describe('the Kubernetes API misbehaves: a defined outcome, never a 500, and nothing retried blindly', () => {
  it.each<[string, number, string, Fault]>([
    [
      'a 200 with HTML for the Deployment',
      503,
      'kubernetes-unavailable',
      { method: 'GET', path: /\/deployments\//, rawBody: '<html>' },
    ],
    [
      'a 200 with HTML for the pod list',
      503,
      'kubernetes-unavailable',
      { method: 'GET', path: /\/pods$/, rawBody: '<html>' },
    ],
    [
      'a 500 on creating the Lease',
      503,
      'kubernetes-unavailable',
      {
        method: 'POST',
        path: /\/namespaces\/pod-rebalancer\/leases$/,
        name: COOLDOWN,
        status: 500,
      },
    ],
    [
      'a 403 on reading the Lease (RBAC)',
      200,
      'kubernetes-error',
      {
        method: 'GET',
        path: /\/namespaces\/pod-rebalancer\/leases\//,
        name: COOLDOWN,
        status: 403,
      },
    ],
  ])(
    'when the API server answers %s, then %i with failed/%s, no eviction, and the retry acts once',
    async (_name, status, reason, fault) => {
      h = await startHarness();
      seedImbalanced(h);
      h.kube.fail(fault);

      const res = await post(h.service.app);
      const evictionsBefore = evictions(h);
      const retry = await post(h.service.app);

      expect(res.status).toBe(status);
      expect(res.body.results[0]).toMatchObject({ outcome: 'failed', reason });
      expect(evictionsBefore).toBe(0);
      expect(retry.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
      expect(evictions(h)).toBe(2);
    },
  );

  it('when the first eviction gets a 500, then exactly one eviction was sent, the other pod is not-attempted, and the retry sends none', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.fail({ method: 'POST', path: /\/eviction$/, status: 500 });

    const res = await post(h.service.app);
    const retry = await post(h.service.app);

    expect(res.status).toBe(200);
    expect(res.body.results[0].pods.map((p: { result: string }) => p.result)).toEqual([
      'failed',
      'not-attempted',
    ]);
    expect(retry.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(evictions(h)).toBe(1);
    expect(h.kube.removals).toEqual([]);
  });

  it('when creating the Lease gets 409 (another replica won), then cooldown and no eviction', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.fail({
      method: 'POST',
      path: /\/namespaces\/pod-rebalancer\/leases$/,
      name: COOLDOWN,
      status: 409,
    });

    const res = await post(h.service.app);

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(evictions(h)).toBe(0);
  });

  it('when a disruption budget refuses both evictions (429, cause DisruptionBudget), then pdb-blocked after exactly one try per pod, and the retry inside the cooldown tries none', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.pdbBlocked.add('payments/api-hot');
    h.kube.pdbBlocked.add('payments/api-cold');

    const res = await post(h.service.app);
    const retry = await post(h.service.app);

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'pdb-blocked' });
    expect(retry.body.results[0]).toMatchObject({ reason: 'cooldown' });
    expect(evictions(h)).toBe(2);
  });

  it('when the eviction answer is a 200 that is not JSON, then the pod is reported failed and the second is not attempted', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.fail({ method: 'POST', path: /\/eviction$/, rawBody: '<html>' });

    const res = await post(h.service.app);

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'failed', reason: 'removal-failed' });
    expect(evictions(h)).toBe(1);
  });

  it('when recording the Event fails, then the action still stands and is reported', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.kube.fail({ method: 'POST', path: /\/events$/, status: 500 });

    const res = await post(h.service.app);

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals).toHaveLength(2);
    expect(h.kube.events).toEqual([]);
  });
});

describe('the process dies between taking the Lease and evicting', () => {
  const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
  let child: ChildProcess | undefined;
  let dir: string | undefined;

  beforeAll(buildDist, 120_000);

  afterEach(async () => {
    await killIfRunning(child);
    child = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function startServe(harness: Harness, port: number): Promise<ChildProcess> {
    const started = spawn('node', [CLI, 'serve'], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        PROMETHEUS_URL: harness.prom.url,
        WEBHOOK_TOKEN: TOKEN,
        KUBECONFIG: join(dir!, 'kubeconfig'),
      },
      stdio: 'ignore',
    });
    await waitFor(
      'the service to be ready',
      () =>
        fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        ),
      10_000,
      50,
    );
    return started;
  }

  it('when SIGKILL lands while the eviction is pending and the alert is retried after a restart, then the retry is a cooldown and no second eviction is sent', async () => {
    h = await startHarness();
    seedImbalanced(h);
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-kill-'));
    writeFileSync(join(dir, 'kubeconfig'), h.kube.kubeConfigText());
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/webhook`;
    const send = () =>
      fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(payload()),
      });
    // The API server holds the first eviction long enough to kill the process while it waits.
    h.kube.fail({ method: 'POST', path: /\/eviction$/, delayMs: 1500 });
    child = await startServe(h, port);

    const lost = send().then(
      () => 'answered',
      () => 'connection lost',
    );
    await waitFor('the eviction to be pending', () => evictions(h!) === 1, 5000, 10);
    const leaseTaken = h.kube.leases.has('pod-rebalancer/payments.api');
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    child = await startServe(h, port);
    const retry = await send();
    // Let the held eviction complete on the API server side, as a real one would.
    await waitFor('the held eviction to complete', () => h!.kube.removals.length === 1, 5000, 20);

    expect(leaseTaken).toBe(true);
    expect(await lost).toBe('connection lost');
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as { results: unknown[] }).results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'cooldown',
    });
    expect(evictions(h)).toBe(1);
    expect(h.kube.removals).toEqual([{ namespace: 'payments', name: 'api-hot', via: 'eviction' }]);
  }, 60_000);
});
