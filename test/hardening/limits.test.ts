import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/adapters/logger.js';
import { loadConfig } from '../../src/config.js';
import type { Alert } from '../../src/core/targets.js';
import { createApp } from '../../src/http/app.js';
import type { NextFunction, Request, Response } from 'express';
import { boundedWork, type WebhookLimits } from '../../src/http/limits.js';
import { staticTokens } from '../../src/http/tokens.js';
import { realAdapters } from '../../src/main.js';
import { createMetrics } from '../../src/metrics.js';
import type { Pipeline } from '../../src/pipeline.js';
import type { Report } from '../../src/report.js';
import { createService } from '../../src/service.js';
import { payload } from '../http/payload.js';
import {
  CapturedLogs,
  seedImbalanced,
  startHarness,
  TOKEN,
  type Harness,
} from '../support/harness.js';

/** A pipeline whose every call waits until the test lets it finish. */
class GatedPipeline implements Pipeline {
  /** What each call ends in once let through: a report, one an upstream failed (503), a bug. */
  ending: 'report' | 'retryable' | 'throws' = 'report';
  running = 0;
  maxRunning = 0;
  started = 0;
  finished = 0;
  private readonly gates: (() => void)[] = [];

  async handleAlerts(alerts: readonly Alert[], context: { requestId: string }): Promise<Report> {
    this.started++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise<void>((resolve) => this.gates.push(resolve));
    this.running--;
    this.finished++;
    if (this.ending === 'throws') throw new Error('a bug in the pipeline');
    const retryable = this.ending === 'retryable';
    return {
      requestId: context.requestId,
      results: retryable
        ? [
            {
              fingerprint: 'f',
              alertname: 'a',
              outcome: 'failed',
              reason: 'cooldown',
              detail: '',
              retryable,
            },
          ]
        : [],
    };
  }

  /** Lets the oldest `n` waiting calls finish. */
  release(n = Infinity): void {
    for (const open of this.gates.splice(0, n)) open();
  }

  get waiting(): number {
    return this.gates.length;
  }
}

let server: Server | undefined;
let url = '';
let h: Harness | undefined;
afterEach(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  }
  await h?.stop();
  h = undefined;
});

async function listen(app: Parameters<typeof import('node:http').createServer>[1]): Promise<void> {
  const { createServer } = await import('node:http');
  server = createServer(app);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startGated(limits: Partial<WebhookLimits>) {
  const pipeline = new GatedPipeline();
  const logs = new CapturedLogs();
  const registry = new Registry();
  const app = createApp({
    pipeline,
    tokens: staticTokens(TOKEN),
    telemetry: createMetrics(registry),
    registry,
    logger: createLogger('info', logs.transport()),
    ready: () => true,
    limits,
  });
  await listen(app);
  return { pipeline, logs, registry };
}

const post = (signal?: AbortSignal) =>
  fetch(`${url}/webhook`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload()),
    signal,
  });

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('bounded webhook work', () => {
  it('when more requests arrive than may run and wait, then the rest get 503 with Retry-After at once and never reach the pipeline', async () => {
    const { pipeline } = await startGated({ maxInFlight: 2, maxQueued: 3, deadlineMs: 5000 });

    const admitted = Array.from({ length: 5 }, () => post());
    await until('two requests running', () => pipeline.running === 2);
    const refused = await Promise.all(Array.from({ length: 4 }, () => post()));
    await until('the admitted requests to run, two at a time', () => {
      pipeline.release();
      return pipeline.finished === 5;
    });
    const answered = await Promise.all(admitted);

    expect(refused.map((r) => r.status)).toEqual([503, 503, 503, 503]);
    expect(refused.map((r) => r.headers.get('retry-after'))).toEqual(['10', '10', '10', '10']);
    expect(((await refused[0]!.json()) as { error: string }).error).toMatch(/too many/);
    expect(answered.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(pipeline.started).toBe(5);
    expect(pipeline.maxRunning).toBe(2);
  });

  it('when handling passes the deadline, then 503 with Retry-After at the deadline, and the slot stays taken until the work is done', async () => {
    const { pipeline, logs } = await startGated({ maxInFlight: 1, maxQueued: 0, deadlineMs: 200 });
    const started = Date.now();

    const slow = await post();
    const elapsed = Date.now() - started;
    const whileStillWorking = await post();
    pipeline.release();
    await until('the slow work to finish', () => pipeline.finished === 1);
    const afterwards = post();
    await until('the next request to run', () => pipeline.started === 2 && pipeline.waiting === 1);
    pipeline.release();

    expect(slow.status).toBe(503);
    expect(slow.headers.get('retry-after')).toBe('10');
    expect(((await slow.json()) as { error: string }).error).toMatch(/deadline/);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2000);
    expect(whileStillWorking.status).toBe(503);
    expect((await afterwards).status).toBe(200);
    expect(logs.entries.filter((e) => e.message === 'unhandled error')).toEqual([]);
  });

  it.each(['retryable', 'throws'] as const)(
    'when the work ends in an error after the deadline answered (%s), then its late error is dropped and its slot is given back',
    async (ending) => {
      const { pipeline } = await startGated({ maxInFlight: 1, maxQueued: 0, deadlineMs: 200 });
      pipeline.ending = ending;

      const slow = await post();
      pipeline.release();
      await until('the slow work to finish', () => pipeline.finished === 1);
      pipeline.ending = 'report';
      const next = post();
      await until(
        'the next request to run',
        () => pipeline.started === 2 && pipeline.waiting === 1,
      );
      pipeline.release();

      expect(slow.status).toBe(503);
      // Its slot was held until its work ended, then given back: the next request is handled.
      expect((await next).status).toBe(200);
    },
  );

  it('when a handler throws before returning its promise, then the error is answered and its slot is given back', async () => {
    const express = (await import('express')).default;
    const app = express();
    const bounded = boundedWork({ maxInFlight: 1, maxQueued: 0, deadlineMs: 1000 });
    let calls = 0;
    app.post(
      '/webhook',
      bounded(() => {
        calls++;
        throw new Error('thrown before any promise');
      }),
    );
    app.use((_error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ error: 'internal error' });
    });
    await listen(app);

    const statuses = [(await post()).status, (await post()).status];

    // Both reached the handler: the first one's slot was not kept by its throw.
    expect(statuses).toEqual([500, 500]);
    expect(calls).toBe(2);
  });

  it('when a request waits in the queue until the deadline, then it gets 503 and the pipeline never sees it', async () => {
    const { pipeline } = await startGated({ maxInFlight: 1, maxQueued: 1, deadlineMs: 200 });

    const first = post();
    await until('the first request to run', () => pipeline.running === 1);
    const queued = await post();
    pipeline.release();
    await first;

    expect(queued.status).toBe(503);
    expect(((await queued.json()) as { error: string }).error).toMatch(/waited too long/);
    expect(pipeline.started).toBe(1);
  });

  it('when a client gives up while queued, then its place is freed and it is never handled', async () => {
    const { pipeline } = await startGated({ maxInFlight: 1, maxQueued: 1, deadlineMs: 5000 });
    const first = post();
    await until('the first request to run', () => pipeline.running === 1);

    const abort = new AbortController();
    const leaving = post(abort.signal).catch(() => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 50));
    abort.abort();
    await leaving;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const next = post();
    await new Promise((resolve) => setTimeout(resolve, 50));
    pipeline.release();
    await until('the next request to run', () => pipeline.started === 2 && pipeline.waiting === 1);
    pipeline.release();

    expect((await next).status).toBe(200);
    expect((await first).status).toBe(200);
    expect(pipeline.started).toBe(2);
  });

  it('when the webhook is saturated, then /healthz, /readyz and /metrics still answer', async () => {
    const { pipeline } = await startGated({ maxInFlight: 1, maxQueued: 0, deadlineMs: 5000 });
    const busy = post();
    await until('the webhook to be busy', () => pipeline.running === 1);

    const answers = await Promise.all(
      ['/healthz', '/readyz', '/metrics'].map((p) => fetch(url + p)),
    );
    pipeline.release();
    await busy;

    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('when requests are refused, then each 503 is counted once in the requests metric and logged', async () => {
    const { pipeline, registry, logs } = await startGated({
      maxInFlight: 1,
      maxQueued: 0,
      deadlineMs: 200,
    });

    const [slow, busy] = await Promise.all([
      post(),
      until('the first to run', () => pipeline.running === 1).then(() => post()),
    ]);
    pipeline.release();
    await until('the slow work to finish', () => pipeline.finished === 1);
    const counted = await registry.getSingleMetric('pod_rebalancer_webhook_requests_total')!.get();

    expect([slow.status, busy.status]).toEqual([503, 503]);
    expect(counted.values).toEqual([
      expect.objectContaining({ labels: { code: '503' }, value: 2 }),
    ]);
    expect(
      logs.entries.filter((e) => e.message === 'webhook request refused').map((e) => e.refusal),
    ).toEqual(['busy', 'deadline']);
  });

  it('when the real pipeline outlives the deadline, then it answers 503, writes no Lease and removes nothing after it, and the retry acts once', async () => {
    h = await startHarness();
    seedImbalanced(h);
    const env = { PROMETHEUS_URL: h.prom.url, WEBHOOK_TOKEN: TOKEN, PROMETHEUS_TIMEOUT: '5s' };
    const config = loadConfig(env);
    const service = createService(
      config,
      {
        ...realAdapters(config, env, h.kube.kubeConfig()),
        logger: createLogger('error', new CapturedLogs().transport()),
      },
      { limits: { deadlineMs: 300, actReserveMs: 100 } },
    );
    await listen(service.app);
    h.prom.fail({ delayMs: 800 });

    const first = await post();
    await until('the slow answer', () => h!.prom.queries.length === 1, 5000);
    const writesAfterSlowAnswer = h.kube.requests.filter((r) => r.method !== 'GET');
    const retry = await post();

    expect(first.status).toBe(503);
    expect(writesAfterSlowAnswer).toEqual([]);
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as Report).results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.kube.removals).toHaveLength(2);
  });
});
