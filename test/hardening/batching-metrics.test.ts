import { Writable } from 'node:stream';
import request from 'supertest';
import winston from 'winston';
import { describe, expect, it } from '@jest/globals';
import { BatchingMetricsSource } from '../../src/adapters/batching-metrics.js';
import { createLogger } from '../../src/adapters/logger.js';
import {
  InMemoryCluster,
  InMemoryCooldownStore,
  InMemoryRuleEngine,
  StaticMetricsSource,
} from '../../src/adapters/memory.js';
import { loadConfig } from '../../src/config.js';
import type { CpuSamples } from '../../src/core/types.js';
import { UpstreamError } from '../../src/errors.js';
import { staticTokens } from '../../src/http/tokens.js';
import type { MetricsSource, PodCpuQuery } from '../../src/ports.js';
import { createService } from '../../src/service.js';

/** A MetricsSource that records each query and answers from a table, or fails on demand. */
class RecordingSource implements MetricsSource {
  readonly queries: PodCpuQuery[] = [];
  readonly cpu = new Map<string, number>();
  failWith: unknown;

  async podCpu(query: PodCpuQuery): Promise<CpuSamples> {
    this.queries.push(query);
    if (this.failWith !== undefined) throw this.failWith;
    return new Map(
      query.pods.flatMap((pod) => {
        const value = this.cpu.get(`${query.namespace}/${pod}`);
        return value === undefined ? [] : [[pod, value] as const];
      }),
    );
  }
}

const WINDOW = 300_000;
const q = (namespace: string, pods: string[], extra: Partial<PodCpuQuery> = {}): PodCpuQuery => ({
  namespace,
  pods,
  windowMs: WINDOW,
  ...extra,
});
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

describe('BatchingMetricsSource', () => {
  it('when calls for one namespace, window and time come in the same tick, then one query asks for all their pods and each caller gets only its own', async () => {
    const inner = new RecordingSource();
    inner.cpu.set('shop/a-1', 0.5).set('shop/a-2', 0.7).set('shop/b-1', 1.2);
    const source = new BatchingMetricsSource(inner);

    const [a, b] = await Promise.all([
      source.podCpu(q('shop', ['a-1', 'a-2'])),
      source.podCpu(q('shop', ['b-1', 'b-2'])),
    ]);

    expect(inner.queries).toEqual([
      { namespace: 'shop', pods: ['a-1', 'a-2', 'b-1', 'b-2'], windowMs: WINDOW, at: undefined },
    ]);
    expect([...a]).toEqual([
      ['a-1', 0.5],
      ['a-2', 0.7],
    ]);
    expect([...b]).toEqual([['b-1', 1.2]]);
  });

  it('when calls differ in namespace, window or evaluation time, then each is its own query', async () => {
    const inner = new RecordingSource();
    const source = new BatchingMetricsSource(inner);

    await Promise.all([
      source.podCpu(q('shop', ['a'])),
      source.podCpu(q('payments', ['a'])),
      source.podCpu(q('shop', ['a'], { windowMs: 60_000 })),
      source.podCpu(q('shop', ['a'], { at: new Date(1_000_000) })),
      source.podCpu(q('shop', ['b'], { at: new Date(1_000_000) })),
    ]);

    expect(inner.queries.map((x) => [x.namespace, x.windowMs, x.at?.getTime(), x.pods])).toEqual([
      ['shop', WINDOW, undefined, ['a']],
      ['payments', WINDOW, undefined, ['a']],
      ['shop', 60_000, undefined, ['a']],
      ['shop', WINDOW, 1_000_000, ['a', 'b']],
    ]);
  });

  it('when a call comes a tick after the first, then it is not merged into a query already sent', async () => {
    const inner = new RecordingSource();
    const source = new BatchingMetricsSource(inner);

    const first = source.podCpu(q('shop', ['a']));
    await nextTick();
    const second = source.podCpu(q('shop', ['b']));
    await Promise.all([first, second]);

    expect(inner.queries.map((x) => x.pods)).toEqual([['a'], ['b']]);
  });

  it('when the merged query fails, then every caller of that batch sees the same error, and the next call asks afresh', async () => {
    const inner = new RecordingSource();
    const source = new BatchingMetricsSource(inner);
    const down = new UpstreamError('prometheus', 'network', true, 'Prometheus unreachable');
    inner.failWith = down;

    const results = await Promise.allSettled([
      source.podCpu(q('shop', ['a'])),
      source.podCpu(q('shop', ['b'])),
    ]);
    inner.failWith = undefined;
    inner.cpu.set('shop/a', 0.1);
    const after = await source.podCpu(q('shop', ['a']));

    expect(results).toEqual([
      { status: 'rejected', reason: down },
      { status: 'rejected', reason: down },
    ]);
    expect([...after]).toEqual([['a', 0.1]]);
    expect(inner.queries).toHaveLength(2);
  });

  it('when an adapter throws synchronously, then the callers are rejected rather than the process', async () => {
    const throwing: MetricsSource = {
      podCpu: () => {
        throw new Error('boom');
      },
    };
    const source = new BatchingMetricsSource(throwing);

    await expect(source.podCpu(q('shop', ['a']))).rejects.toThrow('boom');
  });

  it('when the pods of a batch would pass maxPods, then the batch is split into queries of at most maxPods', async () => {
    const inner = new RecordingSource();
    const source = new BatchingMetricsSource(inner, { maxPods: 3 });

    await Promise.all([
      source.podCpu(q('shop', ['a', 'b'])),
      source.podCpu(q('shop', ['c', 'd'])),
      source.podCpu(q('shop', ['e'])),
    ]);

    expect(inner.queries.map((x) => x.pods)).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ]);
  });

  it('when asked for no pods, then it answers empty without a query', async () => {
    const inner = new RecordingSource();
    const source = new BatchingMetricsSource(inner);

    expect((await source.podCpu(q('shop', []))).size).toBe(0);
    expect(inner.queries).toEqual([]);
  });

  it('when lingerMs is set, then calls that arrive within it are merged even across ticks', async () => {
    const inner = new RecordingSource();
    const source = new BatchingMetricsSource(inner, { lingerMs: 30 });

    const first = source.podCpu(q('shop', ['a']));
    await nextTick();
    const second = source.podCpu(q('shop', ['b']));
    await Promise.all([first, second]);

    expect(inner.queries.map((x) => x.pods)).toEqual([['a', 'b']]);
  });
});

describe('the service merges CPU queries', () => {
  const silent = () =>
    createLogger(
      'error',
      new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, done) => done() }) }),
    );

  function service(batchMetrics?: boolean) {
    const cluster = new InMemoryCluster();
    const metrics = new StaticMetricsSource();
    const startedAt = new Date(Date.now() - 3_600_000);
    for (const name of ['api', 'web', 'worker']) {
      const pods = ['hot', 'a', 'b', 'cold'].map((suffix) => ({
        name: `${name}-${suffix}`,
        uid: `uid-${name}-${suffix}`,
        phase: 'Running',
        ready: true,
        terminating: false,
        startedAt,
      }));
      cluster.addDeployment(
        {
          namespace: 'shop',
          name,
          uid: `uid-${name}`,
          optedOut: false,
          rolloutInProgress: false,
          selector: { matchLabels: { app: name } },
        },
        pods,
      );
      pods.forEach((pod, i) => metrics.cpu.set(`shop/${pod.name}`, [1.8, 0.6, 0.6, 0.05][i]!));
    }
    const config = loadConfig({ PROMETHEUS_URL: 'http://127.0.0.1:9', WEBHOOK_TOKEN: 't' });
    const built = createService(
      config,
      {
        cluster,
        metrics,
        guards: metrics,
        rules: new InMemoryRuleEngine(cluster),
        cooldown: new InMemoryCooldownStore(),
        clock: { now: () => new Date() },
        logger: silent(),
        tokens: staticTokens('t'),
        identity: 'test',
      },
      batchMetrics === undefined ? {} : { batchMetrics },
    );
    return { ...built, metrics, cluster };
  }

  const body = {
    version: '4',
    alerts: ['api', 'web', 'worker'].map((deployment) => ({
      status: 'firing',
      fingerprint: deployment,
      labels: { alertname: 'DeploymentCPUImbalance', namespace: 'shop', deployment },
    })),
  };

  it('when one payload names three Deployments of one namespace, then the service asks for their CPU in one query and acts on each', async () => {
    const s = service();

    const res = await request(s.app).post('/webhook').set('Authorization', 'Bearer t').send(body);

    expect(res.status).toBe(200);
    expect(res.body.results.map((r: { outcome: string }) => r.outcome)).toEqual([
      'rebalanced',
      'rebalanced',
      'rebalanced',
    ]);
    expect(s.metrics.queries).toBe(1);
    expect(s.cluster.removed).toHaveLength(6);
  });

  it('when merging across payloads is turned off, then one payload still costs one query and one pod list for its namespace (the pipeline verifies it together)', async () => {
    const s = service(false);

    const res = await request(s.app).post('/webhook').set('Authorization', 'Bearer t').send(body);

    expect(res.body.results.map((r: { outcome: string }) => r.outcome)).toEqual([
      'rebalanced',
      'rebalanced',
      'rebalanced',
    ]);
    expect(s.metrics.queries).toBe(1);
    expect(s.cluster.podLists).toBe(1);
  });
});
