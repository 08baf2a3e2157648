import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { seedImbalanced, startHarness, TOKEN, type Harness } from '../support/harness.js';
import { fixtureText } from './fixtures.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

describe('refused requests: a clear status and message, never a 500, nothing touched', () => {
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h);
  });

  const authed = () =>
    request(h.service.app).post('/webhook').set('Authorization', `Bearer ${TOKEN}`);

  it.each([
    ['no Authorization header', undefined],
    ['a wrong bearer token', 'Bearer not-the-token'],
    ['the token with a suffix', `Bearer ${TOKEN}x`],
    [
      'Basic auth, as in some Alertmanager routes',
      'Basic YWxlcnRtYW5hZ2VyOmV4YW1wbGUtcGFzc3dvcmQ=',
    ],
  ])('401 for %s', async (_name, header) => {
    const req = request(h.service.app)
      .post('/webhook')
      .type('json')
      .send(fixtureText('firing-single.json'));
    const res = await (header ? req.set('Authorization', header) : req);

    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/bearer token/);
    expect(h.kube.requests).toHaveLength(0);
  });

  it.each([
    ['malformed JSON', '{"version": "4", "alerts": [', /malformed JSON/],
    ['a payload without alerts', JSON.stringify({ version: '4' }), /alerts/],
    ['another payload version', JSON.stringify({ ...payload(), version: '3' }), /\/version/],
    [
      'an alert with an unknown status',
      JSON.stringify(payload([{ status: 'pending' }])),
      /\/alerts\/0\/status/,
    ],
    [
      'labels that are not strings',
      JSON.stringify({
        ...payload(),
        alerts: [{ status: 'firing', labels: { a: 1 }, fingerprint: 'x' }],
      }),
      /\/alerts\/0\/labels\/a must be string/,
    ],
    [
      'alerts that is not an array',
      JSON.stringify({ version: '4', alerts: {} }),
      /\/alerts must be array/,
    ],
    ['a JSON string instead of an object', '"hello"', /malformed JSON|must be object/],
  ])('400 for %s, naming the problem', async (_name, body, message) => {
    const res = await authed().type('json').send(body);

    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(message);
    expect(h.kube.requests).toHaveLength(0);
  });

  it('415 when the body is not JSON', async () => {
    const res = await authed().set('Content-Type', 'text/plain').send('firing');

    expect(res.status).toBe(415);
    expect(res.body.error).toMatch(/application\/json/);
  });

  it('413 when the body is over the limit', async () => {
    const huge = JSON.stringify({ ...payload(), padding: 'x'.repeat(5 * 1024 * 1024) });

    const res = await authed().type('json').send(huge);

    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/larger than the limit/);
  });

  it('tolerates fields a newer Alertmanager adds', async () => {
    const body = {
      ...payload(),
      newField: { nested: true },
      alerts: [{ ...(payload().alerts as object[])[0], extra: 1 }],
    };

    const res = await authed().send(body);

    expect(res.status).toBe(200);
  });
});

describe('request ids, logs and metrics', () => {
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h);
  });

  it('keeps an incoming X-Request-Id, echoes it, and puts it in the report', async () => {
    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('X-Request-Id', 'am-1234')
      .send(payload());

    expect(res.headers['x-request-id']).toBe('am-1234');
    expect(res.body.requestId).toBe('am-1234');
  });

  it('makes a request id when none (or an unsafe one) is sent', async () => {
    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('X-Request-Id', 'bad id\twith spaces')
      .send(payload());

    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('writes one JSON decision line with request id, fingerprint, groupKey, stats, pods, outcome and reason', async () => {
    await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('X-Request-Id', 'trace-1')
      .type('json')
      .send(fixtureText('firing-single.json'));

    const decisions = h.logs.entries.filter((e) => e.message === 'decision');
    expect(decisions).toEqual([
      expect.objectContaining({
        level: 'info',
        requestId: 'trace-1',
        fingerprint: 'd9600f0b57164017',
        groupKey: expect.stringContaining('DeploymentCPUImbalance'),
        namespace: 'payments',
        deployment: 'api',
        outcome: 'rebalanced',
        reason: 'imbalanced',
        stats: expect.objectContaining({ count: 5 }),
        pods: expect.arrayContaining([expect.objectContaining({ name: 'api-hot' })]),
      }),
    ]);
    expect(h.logs.lines.join('\n')).not.toContain(TOKEN);
  });

  it('counts requests by code, alerts by outcome and reason, and pods removed', async () => {
    await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload());
    await request(h.service.app).post('/webhook').send(payload());

    const metrics = (await request(h.service.app).get('/metrics')).text;

    expect(metrics).toContain('pod_rebalancer_webhook_requests_total{code="200"} 1');
    expect(metrics).toContain('pod_rebalancer_webhook_requests_total{code="401"} 1');
    expect(metrics).toContain(
      'pod_rebalancer_alerts_total{outcome="rebalanced",reason="imbalanced"} 1',
    );
    expect(metrics).toContain(
      'pod_rebalancer_pods_removed_total{namespace="payments",deployment="api",action="evict"} 2',
    );
    expect(metrics).toMatch(
      /pod_rebalancer_deployment_cpu_stddev_cores\{namespace="payments",deployment="api"\} 0\.5\d+/,
    );
    expect(metrics).toContain('pod_rebalancer_verification_duration_seconds_count 1');
    expect(metrics).toContain('process_cpu_seconds_total');
    // Known reasons start at 0, so increase() in the self-monitoring rules sees the first one.
    expect(metrics).toContain(
      'pod_rebalancer_alerts_total{outcome="skipped",reason="pdb-blocked"} 0',
    );
  });

  it('exposes metrics that pass promtool check metrics', async () => {
    await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload());
    const metrics = (await request(h.service.app).get('/metrics')).text;

    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });

    if (check.error)
      throw new Error('promtool not found: apt-get install prometheus (Debian package)');
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
  });

  it('answers /healthz and /readyz', async () => {
    expect((await request(h.service.app).get('/healthz')).status).toBe(200);
    expect((await request(h.service.app).get('/readyz')).status).toBe(200);
    h.service.stopReadiness();
    expect((await request(h.service.app).get('/readyz')).status).toBe(503);
  });
});

describe('WEBHOOK_TOKEN_FILE', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-tokens-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts every token in the file and follows a rotation without a restart', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, '# rotation in progress\nold-token\nnew-token\n');
    h = await startHarness({ WEBHOOK_TOKEN: '', WEBHOOK_TOKEN_FILE: file });
    seedImbalanced(h);
    const status = async (token: string) =>
      (
        await request(h.service.app)
          .post('/webhook')
          .set('Authorization', `Bearer ${token}`)
          .send(payload([{ status: 'resolved' }]))
      ).status;

    expect([await status('old-token'), await status('new-token'), await status('other')]).toEqual([
      200, 200, 401,
    ]);

    writeFileSync(file, 'new-token\n');
    // The file is re-checked at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    expect([await status('old-token'), await status('new-token')]).toEqual([401, 200]);
  });
});
