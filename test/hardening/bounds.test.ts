import { connect } from 'node:net';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/adapters/logger.js';
import { PrometheusMetricsSource, QUERIES_IN_FLIGHT } from '../../src/adapters/prometheus.js';
import type { Alert } from '../../src/core/targets.js';
import { createApp } from '../../src/http/app.js';
import { MAX_ALERTS } from '../../src/http/webhook.js';
import { staticTokens } from '../../src/http/tokens.js';
import { createMetrics } from '../../src/metrics.js';
import type { Pipeline } from '../../src/pipeline.js';
import type { Report } from '../../src/report.js';
import { payload } from '../http/payload.js';
import { FakePrometheus } from '../support/fake-prometheus.js';
import {
  CapturedLogs,
  postWebhook,
  seedImbalanced,
  startHarness,
  TOKEN,
  type Harness,
} from '../support/harness.js';

let h: Harness | undefined;
let server: Server | undefined;
let prom: FakePrometheus | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
  await prom?.stop();
  prom = undefined;
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  }
});

/** A pipeline that answers at once and counts the alerts it was given. */
class CountingPipeline implements Pipeline {
  alerts = 0;
  async handleAlerts(alerts: readonly Alert[], context: { requestId: string }): Promise<Report> {
    this.alerts += alerts.length;
    return { requestId: context.requestId, results: [] };
  }
}

async function listenApp(limits: Parameters<typeof createApp>[0]['limits']) {
  const pipeline = new CountingPipeline();
  const registry = new Registry();
  const app = createApp({
    pipeline,
    tokens: staticTokens(TOKEN),
    telemetry: createMetrics(registry),
    registry,
    logger: createLogger('error', new CapturedLogs().transport()),
    ready: () => true,
    limits,
  });
  const { createServer } = await import('node:http');
  server = createServer(app);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { pipeline, port: (server.address() as AddressInfo).port };
}

const postTo = (port: number, body: unknown) =>
  fetch(`http://127.0.0.1:${port}/webhook`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const unknownAlerts = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    labels: { alertname: 'SomethingElse', namespace: 'payments', deployment: `d${i}` },
    fingerprint: `f${i}`,
  }));

describe('bounded payloads', () => {
  it(`when a payload holds more than ${MAX_ALERTS} alerts, then 413 naming the limit, and the pipeline never sees it`, async () => {
    const { pipeline, port } = await listenApp({});

    const res = await postTo(port, payload(unknownAlerts(MAX_ALERTS + 1)));

    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toContain(
      `${MAX_ALERTS + 1} alerts; at most ${MAX_ALERTS}`,
    );
    expect(pipeline.alerts).toBe(0);

    const atLimit = await postTo(port, payload(unknownAlerts(MAX_ALERTS)));
    expect(atLimit.status).toBe(200);
    expect(pipeline.alerts).toBe(MAX_ALERTS);
  });

  it('when a body trickles in slower than allowed, then 408 and the connection closed, and it never held the one handling slot', async () => {
    const { pipeline, port } = await listenApp({
      bodyTimeoutMs: 300,
      maxInFlight: 1,
      maxQueued: 0,
    });
    const socket = connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
    });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      [
        'POST /webhook HTTP/1.1',
        'Host: 127.0.0.1',
        `Authorization: Bearer ${TOKEN}`,
        'Content-Type: application/json',
        'Content-Length: 1000',
        '',
        '{"version":"4",',
      ].join('\r\n'),
    );

    // While that body has not arrived, a whole request takes the only slot and is answered.
    const meanwhile = await postTo(port, payload(unknownAlerts(1)));
    expect(meanwhile.status).toBe(200);

    const slow = await answer;
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(slow).toContain('did not arrive within 0.3s of its headers');
    expect(pipeline.alerts).toBe(1);
  });
});

describe('guards give nothing away', () => {
  it('when a guard returns a series with a secret in a label, then the report, the logs and the Event say how many series, never the secret', async () => {
    const SECRET = 'hunter2-db-password-7f3a';
    const GUARD = 'kube_secret_info{namespace="billing"}';
    h = await startHarness({ GUARD_QUERY: GUARD });
    seedImbalanced(h);
    h.prom.series.set(GUARD, [
      {
        labels: { __name__: 'kube_secret_info', namespace: 'billing', password: SECRET },
        value: 1,
      },
      { labels: { __name__: 'kube_secret_info', namespace: 'billing', token: SECRET }, value: 1 },
    ]);

    const res = await postWebhook(h.service.app, payload());

    expect(res.body.results[0]).toMatchObject({
      reason: 'guarded',
      detail: expect.stringContaining('guard returned 2 series'),
    });
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
    expect(h.logs.lines.join('\n')).not.toContain(SECRET);
    expect(h.kube.events).toHaveLength(1);
    expect(JSON.stringify(h.kube.events)).not.toContain(SECRET);
    expect(JSON.stringify(h.kube.events)).toContain('guard returned 2 series');
    // Evaluated bounded: Prometheus counts the series, their labels never come back.
    expect(h.prom.queries.map((q) => q.query)).toContain(`count(${GUARD})`);
  });
});

describe('a failing guard gives nothing away either', () => {
  it('when Prometheus fails a guard with an error that quotes series, then the report and the logs say it failed, never the series', async () => {
    const SECRET = 'hunter2-db-password-7f3a';
    const GUARD = 'kube_secret_info * on(namespace) up';
    h = await startHarness({ GUARD_QUERY: GUARD });
    seedImbalanced(h);
    h.prom.fail({
      match: /kube_secret_info/,
      status: 422,
      rawBody: JSON.stringify({
        status: 'error',
        errorType: 'execution',
        error: `found duplicate series for the match group {namespace="billing"} on the left hand-side of the operation: [{password="${SECRET}"}]`,
      }),
    });

    const res = await postWebhook(h.service.app, payload());

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'prometheus-unavailable',
      detail: expect.stringContaining('could not evaluate the guard'),
    });
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
    expect(h.logs.lines.join('\n')).not.toContain(SECRET);
    expect(h.kube.removals).toHaveLength(0);
  });
});

describe('bounded answers from Prometheus and the rule engine', () => {
  const big = (field: string) =>
    JSON.stringify({ status: 'success', data: { [field]: [], padding: 'x'.repeat(4096) } });

  it('when the rule engine answers more than PROMETHEUS_MAX_RESPONSE, then an error naming the limit, nothing written, no query', async () => {
    h = await startHarness({ PROMETHEUS_MAX_RESPONSE: '1KiB' });
    seedImbalanced(h);
    h.prom.fail({ rules: true, rawBody: big('groups') });

    const res = await postWebhook(h.service.app, payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'prometheus-error',
      detail: expect.stringContaining('larger than PROMETHEUS_MAX_RESPONSE (1KiB)'),
    });
    expect(h.prom.queries).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
  });

  it('when a query answer is larger than PROMETHEUS_MAX_RESPONSE, then an error naming the limit and nothing removed', async () => {
    h = await startHarness({ PROMETHEUS_MAX_RESPONSE: '1KiB' });
    seedImbalanced(h);
    h.prom.fail({ rawBody: big('result') });

    const res = await postWebhook(h.service.app, payload());

    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      detail: expect.stringContaining('PROMETHEUS_MAX_RESPONSE (1KiB)'),
    });
    expect(h.kube.removals).toEqual([]);
  });

  it('when the service queries, then every query carries the server-side timeout', async () => {
    h = await startHarness({ GUARD_QUERY: 'up == 0' });
    seedImbalanced(h);

    await postWebhook(h.service.app, payload());

    expect(h.prom.queries.length).toBe(2);
    for (const query of h.prom.queries) expect(query.params.timeout).toMatch(/^\d+ms$/);
  });

  it(`when many queries are asked at once, then at most ${QUERIES_IN_FLIGHT} are in flight`, async () => {
    prom = await new FakePrometheus().start();
    prom.fail({ delayMs: 50, times: 40 });
    const source = new PrometheusMetricsSource({ url: prom.url, timeoutMs: 5000 });

    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        source.podCpu({ namespace: `ns-${i}`, pods: ['a'], windowMs: 60_000 }),
      ),
    );

    expect(prom.queries).toHaveLength(40);
    expect(prom.maxInFlight).toBe(QUERIES_IN_FLIGHT);
  });
});

describe('bounded Kubernetes reads while the caches cannot answer', () => {
  it('when a payload names 100 Deployments and every read goes to the API server, then at most 16 of its cheap-gate reads are in flight at once', async () => {
    // Without watch caches (as while they have not synced), each target reads its Deployment
    // and its Lease from the API server; the rule engine has none of them active, so nothing
    // further is asked: what is left in flight is the cheap gates' reads alone.
    h = await startHarness();
    const alerts = Array.from({ length: 100 }, (_, i) => ({
      labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: `d-${i}` },
      fingerprint: `f${i}`,
    }));
    for (const { labels } of alerts) seedImbalanced(h, 'payments', labels.deployment);
    h.prom.ruleAlerts.splice(0);
    // A slow API server: the reads pile up unless something bounds them.
    h.kube.fail({ method: 'GET', path: /\/deployments\//, delayMs: 100, times: 100 });

    const res = await postWebhook(h.service.app, payload(alerts), { fromRule: false });

    expect(
      res.body.results.every((r: { reason: string }) => r.reason === 'unconfirmed-alert'),
    ).toBe(true);
    expect(h.kube.requests.length).toBeGreaterThanOrEqual(100);
    expect(h.kube.maxInFlight).toBeLessThanOrEqual(16);
  });
});
