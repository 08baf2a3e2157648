import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { payload } from '../http/payload.js';
import { seedImbalanced, startHarness, type Harness } from '../support/harness.js';

const WEBHOOK_TOKEN = 'whk-S3CRET-3f9a7c21e5d04b';
const PROMETHEUS_TOKEN = 'prom-S3CRET-b61d0e94aa7c12';
/** The bearer token in the fake API server's kubeconfig. */
const KUBERNETES_TOKEN = 'fake-kube-token';
const SECRETS = [WEBHOOK_TOKEN, PROMETHEUS_TOKEN, KUBERNETES_TOKEN];

/** Everything the service said to anyone during the flow, as text. */
const seen: { where: string; text: string }[] = [];

function record(where: string, value: unknown): void {
  seen.push({ where, text: typeof value === 'string' ? value : JSON.stringify(value) });
}

/**
 * The whole flow at LOG_LEVEL=debug: good and bad webhook tokens, a bearer token towards
 * Prometheus from PROMETHEUS_BEARER_TOKEN_FILE, and every kind of upstream error. No token may
 * appear in a log line, a response (body or header), stdout/stderr, an Event or a Lease.
 */
describe('secrets stay secret', () => {
  let h: Harness;
  let dir: string;
  const writes: string[] = [];
  const original = { out: process.stdout.write, err: process.stderr.write };

  const post = (authorization: string | undefined, body: object = payload()) => {
    const req = request(h.service.app).post('/webhook');
    return (authorization ? req.set('Authorization', authorization) : req).send(body);
  };

  async function step(
    name: string,
    run: () => Promise<request.Response>,
  ): Promise<request.Response> {
    const res = await run();
    record(`${name}: status line and headers`, res.headers);
    record(`${name}: body`, res.text);
    return res;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-secrets-'));
    writeFileSync(join(dir, 'prometheus-token'), `${PROMETHEUS_TOKEN}\n`);
    // Anything written to stdout/stderr by the process under test is kept too.
    const tee = (stream: 'out' | 'err') =>
      function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
        writes.push(String(chunk));
        return (original[stream] as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof process.stdout.write;
    process.stdout.write = tee('out');
    process.stderr.write = tee('err');
    h = await startHarness({
      LOG_LEVEL: 'debug',
      WEBHOOK_TOKEN,
      PROMETHEUS_BEARER_TOKEN_FILE: join(dir, 'prometheus-token'),
      PROMETHEUS_TIMEOUT: '300ms',
    });
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'shop', 'web');
    seedImbalanced(h, 'shop', 'cart');
    seedImbalanced(h, 'shop', 'search');
  });

  afterAll(async () => {
    process.stdout.write = original.out;
    process.stderr.write = original.err;
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const alertFor = (namespace: string, deployment: string) =>
    payload([{ labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment } }]);

  it('when the flow runs through good and bad tokens and every upstream error, then no token appears anywhere', async () => {
    // Refused: no token, wrong tokens, the token with a suffix, the token in Basic auth.
    await step('no token', () => post(undefined));
    await step('wrong token', () => post('Bearer not-the-token'));
    await step('token with a suffix', () => post(`Bearer ${WEBHOOK_TOKEN}x`));
    await step('token as Basic', () =>
      post(`Basic ${Buffer.from(`alertmanager:${WEBHOOK_TOKEN}`).toString('base64')}`),
    );
    await step('token in the body', () =>
      post(`Bearer ${WEBHOOK_TOKEN}`, { version: '3', token: WEBHOOK_TOKEN }),
    );
    // Prometheus fails in every way it can: each error passes through prometheus-query, whose
    // rejections carry the request configuration, Authorization header included.
    const good = `Bearer ${WEBHOOK_TOKEN}`;
    h.prom.fail({ status: 500 });
    await step('prometheus 500', () => post(good));
    h.prom.fail({
      status: 401,
      rawBody: '{"status":"error","errorType":"unauthorized","error":"bad token"}',
    });
    await step('prometheus 401', () => post(good));
    h.prom.fail({ delayMs: 1000 });
    await step('prometheus timeout', () => post(good));
    h.prom.fail({ destroy: true });
    await step('prometheus connection dropped', () => post(good));
    h.prom.fail({ rawBody: '<html>login</html>' });
    await step('prometheus html', () => post(good));
    // The Kubernetes API fails: reading, the Lease, the eviction, the Event.
    h.kube.fail({ method: 'GET', path: /\/deployments\//, status: 500 });
    await step('kubernetes 500 on the Deployment', () => post(good));
    h.kube.fail({ method: 'GET', path: /\/leases\//, status: 403 });
    await step('kubernetes 403 on the Lease', () => post(good));
    h.kube.fail({ method: 'GET', path: /\/pods$/, destroy: true });
    await step('kubernetes connection dropped', () => post(good));
    h.kube.fail({ method: 'POST', path: /\/eviction$/, status: 500 });
    await step('eviction 500', () => post(good));
    h.kube.fail({ method: 'POST', path: /\/events$/, status: 500 });
    await step('event 500', () => post(good, alertFor('shop', 'web')));
    // A success, with its Lease and Event, and the retry inside the cooldown.
    await step('acts', () => post(good, alertFor('shop', 'cart')));
    await step('cooldown', () => post(good, alertFor('shop', 'cart')));
    // A corrupt compressed body: refused by the body parser with the token in the request.
    await step('unreadable body', () =>
      request(h.service.app)
        .post('/webhook')
        .set('Authorization', good)
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .send('not gzip'),
    );
    // Prometheus unreachable altogether.
    await h.prom.stop();
    await step('prometheus down', () => post(good, alertFor('shop', 'search')));
    await step('metrics', () => request(h.service.app).get('/metrics'));

    for (const line of h.logs.lines) record('log line', line);
    for (const write of writes) record('stdout/stderr', write);
    for (const event of h.kube.events) record('Event', event);
    for (const lease of h.kube.leases.values()) record('Lease', lease);

    const leaks = seen.flatMap(({ where, text }) =>
      SECRETS.filter((secret) => text.includes(secret)).map((secret) => `${secret} in ${where}`),
    );
    expect(leaks).toEqual([]);
    // The flow did what it claims: failures were logged, and something was acted on.
    const reasons = new Set(h.logs.entries.map((e) => e.reason));
    for (const reason of [
      'prometheus-unavailable',
      'prometheus-error',
      'kubernetes-unavailable',
      'kubernetes-error',
      'removal-failed',
      'imbalanced',
      'cooldown',
    ]) {
      expect(reasons).toContain(reason);
    }
    expect(h.kube.events.length).toBeGreaterThan(0);
  }, 30_000);

  it('when Prometheus is asked, then the bearer token from PROMETHEUS_BEARER_TOKEN_FILE arrives on every query', () => {
    expect(h.prom.queries.length).toBeGreaterThanOrEqual(3);
    expect(new Set(h.prom.queries.map((q) => q.authorization))).toEqual(
      new Set([`Bearer ${PROMETHEUS_TOKEN}`]),
    );
  });
});
