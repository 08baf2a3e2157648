/**
 * `npm run bench`: measures pod-rebalancer under load and prints one table, each row with the
 * baseline it is judged against, measured in the same run. Not part of `npm test` (jest only
 * looks at test/ and src/ for *.test.ts); no result here fails anything: the goals are printed
 * beside the numbers. Takes about three minutes on two cores, most of it the 100,000 requests.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import autocannon from 'autocannon';
import winston from 'winston';
import { createLogger } from '../src/adapters/logger.js';
import { loadConfig } from '../src/config.js';
import { decide } from '../src/core/decide.js';
import type { PodFacts } from '../src/core/types.js';
import { realAdapters } from '../src/main.js';
import { createService, METRICS_BATCHING, type ServiceOptions } from '../src/service.js';
import { preciseNow, TOKEN, type Counts, type FakesCommand, type World } from './shared.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const CONNECTIONS = 16;

/** A forked helper answering requests over IPC, matched by id. */
class Child {
  private nextId = 0;
  private readonly pending = new Map<number, (answer: unknown) => void>();
  readonly child: ChildProcess;
  readonly first: Promise<Record<string, unknown>>;

  constructor(script: string, args: string[] = []) {
    this.child = fork(here(script), args, {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.first = new Promise((resolve) => this.child.once('message', resolve as never));
    this.child.on('message', (message: { id?: number; answer?: unknown }) => {
      if (message.id === undefined) return;
      this.pending.get(message.id)?.(message.answer);
      this.pending.delete(message.id);
    });
  }

  ask<T>(command: FakesCommand): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve as (answer: unknown) => void);
      this.child.send({ ...command, id });
    });
  }

  /** One reply that carries no id (the targets' `rss`). */
  once<T>(message: object): Promise<T> {
    return new Promise((resolve) => {
      this.child.once('message', resolve as never);
      this.child.send(message);
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.disconnect();
    });
  }
}

function alert(namespace: string, deployment: string, i: number) {
  return {
    status: 'firing',
    labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment, severity: 'warning' },
    annotations: { summary: `CPU of ${namespace}/${deployment} is unevenly spread` },
    startsAt: '2026-11-28T16:44:56.709Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus:9090/graph',
    fingerprint: `f${i.toString(16).padStart(15, '0')}`,
  };
}

function envelope(alerts: object[]) {
  return {
    version: '4',
    status: 'firing',
    receiver: 'pod-rebalancer',
    groupKey: '{}/{alertname="DeploymentCPUImbalance"}',
    truncatedAlerts: 0,
    groupLabels: { alertname: 'DeploymentCPUImbalance' },
    commonLabels: { alertname: 'DeploymentCPUImbalance' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts,
  };
}

const HEADERS = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

async function cannon(port: number, run: { duration?: number; amount?: number }) {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/webhook`,
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify(envelope([alert('ns-0', 'app-0', 0)])),
    connections: CONNECTIONS,
    ...run,
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) console.error(`  (${bad} of ${result.requests.total} requests not 2xx)`);
  return {
    perSecond: result.requests.total / result.duration,
    total: result.requests.total,
    seconds: result.duration,
  };
}

interface Row {
  what: string;
  baseline: string;
  result: string;
  ratio: string;
  goal: string;
}

const rows: Row[] = [];

interface Memory {
  rss: number;
  heapUsed: number;
}
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const mb = (bytes: number) => fmt(bytes / 2 ** 20, 1);
const growth = (before: number, after: number) =>
  `${after >= before ? '+' : ''}${fmt((after / before - 1) * 100, 1)} %`;

async function throughputAndMemory(): Promise<void> {
  console.error('webhook throughput: bare express …');
  const bareTarget = new Child('./target.js', ['bare']);
  const { port: barePort } = (await bareTarget.first) as { port: number };
  await cannon(barePort, { duration: 1 });
  const bare = await cannon(barePort, { duration: 5 });
  await bareTarget.stop();

  console.error(
    'webhook throughput: the service, alert storm inside the cooldown, 100,000 requests …',
  );
  const appTarget = new Child('./target.js', ['app']);
  const { port } = (await appTarget.first) as { port: number };
  const cold = await appTarget.once<Memory>({ cmd: 'rss' });
  await cannon(port, { amount: 5000 });
  const before = await appTarget.once<Memory>({ cmd: 'rss' });
  // In tenths, with memory after each: a leak keeps growing, an allocator's high-water mark does not.
  const samples: Memory[] = [];
  const app = { total: 0, seconds: 0 };
  for (let tenth = 0; tenth < 10; tenth++) {
    const run = await cannon(port, { amount: 10_000 });
    app.total += run.total;
    app.seconds += run.seconds;
    samples.push(await appTarget.once<Memory>({ cmd: 'rss' }));
  }
  const [half, after] = [samples[4]!, samples[9]!];
  await appTarget.stop();
  const perSecond = app.total / app.seconds;

  console.error('webhook throughput: the service against the fake API server over HTTP …');
  const fakes = new Child('./fakes.js');
  const urls = await fakes.ask<{ kubeUrl: string; promUrl: string }>({
    cmd: 'seed',
    world: { namespaces: 1, deploymentsPerNamespace: 1 },
  });
  const httpTarget = new Child('./target.js', ['app-http', urls.kubeUrl, urls.promUrl]);
  const { port: httpPort } = (await httpTarget.first) as { port: number };
  await cannon(httpPort, { duration: 1 });
  const overHttp = await cannon(httpPort, { duration: 4 });
  await Promise.all([httpTarget.stop(), fakes.stop()]);

  rows.push(
    {
      what: 'webhook, alert storm inside the cooldown (req/s, in-memory adapters)',
      baseline: `${fmt(bare.perSecond)} (bare express + JSON)`,
      result: fmt(perSecond),
      ratio: fmt(perSecond / bare.perSecond, 2),
      goal: '≥ 0.5',
    },
    {
      what: 'the same, Kubernetes client → fake API server over HTTP (req/s)',
      baseline: `${fmt(bare.perSecond)} (bare express + JSON)`,
      result: fmt(overHttp.perSecond),
      ratio: fmt(overHttp.perSecond / bare.perSecond, 2),
      goal: '(informational)',
    },
    {
      what: `resident memory before/after ${fmt(app.total)} requests (MB)`,
      baseline: `${mb(before.rss)} after 5,000 warm-up (${mb(cold.rss)} cold)`,
      result: `${mb(after.rss)} (${mb(half.rss)} halfway)`,
      ratio: `${growth(before.rss, after.rss)} (second half ${growth(half.rss, after.rss)})`,
      goal: '< +10 %',
    },
    {
      what: '… V8 heap in use after a full GC (MB)',
      baseline: `${mb(before.heapUsed)} after warm-up (${mb(cold.heapUsed)} cold)`,
      result: `${mb(after.heapUsed)} (${mb(half.heapUsed)} halfway)`,
      ratio: `${growth(before.heapUsed, after.heapUsed)} (second half ${growth(half.heapUsed, after.heapUsed)})`,
      goal: '(leak check)',
    },
  );
}

function kubeConfigFor(url: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'fake-kube-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  return kubeConfig;
}

const discard = () =>
  new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, done) => done() }) });

/** The service in this process against the fakes in the child, listening on a free port. */
async function serviceAgainst(
  urls: { kubeUrl: string; promUrl: string },
  batchMetrics: ServiceOptions['batchMetrics'],
): Promise<{ server: Server; port: number }> {
  const env = { PROMETHEUS_URL: urls.promUrl, WEBHOOK_TOKEN: TOKEN };
  const config = loadConfig(env);
  const service = createService(
    config,
    {
      ...realAdapters(config, env, kubeConfigFor(urls.kubeUrl)),
      logger: createLogger('info', discard()),
    },
    // A payload this big takes longer than the webhook's deadline here; measure all of it.
    { batchMetrics, limits: { deadlineMs: 300_000 } },
  );
  const server = service.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function postAlerts(port: number, alerts: object[]): Promise<{ outcomes: string[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/webhook`, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify(envelope(alerts)),
  });
  const report = (await res.json()) as { results?: { outcome: string }[] };
  if (!report.results)
    throw new Error(`the webhook answered ${res.status}: ${JSON.stringify(report)}`);
  return { outcomes: report.results.map((r) => r.outcome) };
}

async function onePayload(
  fakes: Child,
  world: World,
  batchMetrics: ServiceOptions['batchMetrics'],
): Promise<Counts & { seconds: number; rebalanced: number }> {
  const urls = await fakes.ask<{ kubeUrl: string; promUrl: string }>({ cmd: 'seed', world });
  const { server, port } = await serviceAgainst(urls, batchMetrics);
  const alerts: object[] = [];
  for (let n = 0; n < world.namespaces; n++)
    for (let d = 0; d < world.deploymentsPerNamespace; d++)
      alerts.push(alert(`ns-${n}`, `app-${d}`, alerts.length));
  const started = performance.now();
  const { outcomes } = await postAlerts(port, alerts);
  const seconds = (performance.now() - started) / 1000;
  await closeServer(server);
  const counts = await fakes.ask<Counts>({ cmd: 'counts' });
  return { ...counts, seconds, rebalanced: outcomes.filter((o) => o === 'rebalanced').length };
}

async function thousandAlerts(): Promise<void> {
  console.error('one payload of 1,000 alerts over 1,000 Deployments in 20 namespaces …');
  const fakes = new Child('./fakes.js');
  const world = { namespaces: 20, deploymentsPerNamespace: 50 };
  // Merging within one tick goes first, on a quarter of the world: only its query count is
  // reported, so it may pay for warming up (JIT, sockets) and the two runs compared do not.
  const oneTick = await onePayload(
    fakes,
    { namespaces: 5, deploymentsPerNamespace: 50 },
    {
      lingerMs: 0,
    },
  );
  const unbatched = await onePayload(fakes, world, false);
  const batched = await onePayload(fakes, world, true);
  await fakes.stop();
  for (const [name, run] of Object.entries({ unbatched, batched }))
    if (run.rebalanced !== 1000)
      console.error(`  (${name}: ${run.rebalanced} of 1,000 rebalanced)`);
  const linger = `merged, ${METRICS_BATCHING.lingerMs} ms window`;
  rows.push(
    {
      what: `1,000 alerts / 1,000 Deployments / 20 namespaces: wall time (s), ${linger}`,
      baseline: `${fmt(unbatched.seconds, 2)} (not merged)`,
      result: fmt(batched.seconds, 2),
      ratio: fmt(batched.seconds / unbatched.seconds, 2),
      goal: '< 2 s',
    },
    {
      what: `… Prometheus queries, ${linger} (merged within one tick: ${fmt(oneTick.prometheusQueries)} for 250 alerts in 5 namespaces)`,
      baseline: `${fmt(unbatched.prometheusQueries)} (not merged)`,
      result: fmt(batched.prometheusQueries),
      ratio: fmt(batched.prometheusQueries / unbatched.prometheusQueries, 2),
      goal: 'grows with namespaces (20), not alerts',
    },
    {
      what: '… Kubernetes API calls (of which evictions)',
      baseline: `${fmt(unbatched.kubernetesCalls)} (${fmt(unbatched.evictions)}) (not merged)`,
      result: `${fmt(batched.kubernetesCalls)} (${fmt(batched.evictions)})`,
      ratio: fmt(batched.kubernetesCalls / unbatched.kubernetesCalls, 2),
      goal: '(informational: 7 per acted Deployment)',
    },
  );
}

function podsOf(count: number): { pods: PodFacts[]; samples: Map<string, number> } {
  const startedAt = new Date(Date.now() - 3_600_000);
  const pods: PodFacts[] = [];
  const samples = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const name = `pod-${i}`;
    pods.push({
      name,
      uid: `uid-${i}`,
      phase: 'Running',
      ready: true,
      terminating: false,
      startedAt,
    });
    samples.set(name, ((i * 7919) % 2000) / 1000);
  }
  return { pods, samples };
}

/** Median milliseconds of one `decide` call over at least 300 ms of repetitions. */
function timeDecide(count: number): number {
  const { pods, samples } = podsOf(count);
  const policy = { threshold: 0.3, minPods: 3, minPodAgeMs: 600_000 };
  const now = new Date();
  const times: number[] = [];
  const until = performance.now() + 300;
  while (performance.now() < until || times.length < 20) {
    const started = performance.now();
    decide(pods, samples, policy, now);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function decisionCore(): void {
  console.error('the decision core …');
  for (const count of [10, 1000, 10_000]) timeDecide(count); // warm-up
  const [ten, thousand, tenThousand] = [10, 1000, 10_000].map(timeDecide) as [
    number,
    number,
    number,
  ];
  rows.push({
    what: '`decide` for 10 / 1,000 / 10,000 pods (ms, median)',
    baseline: `${fmt(ten, 4)} (10 pods)`,
    result: `${fmt(thousand, 3)} / ${fmt(tenThousand, 3)}`,
    ratio: `${fmt(tenThousand / ten, 0)}× for 1,000× the pods`,
    goal: '< 5 ms at 10,000',
  });
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function latency(): Promise<void> {
  const SAMPLES = 200;
  const DELAY_MS = 20;
  console.error(`alert received → eviction sent, ${SAMPLES} alerts one after another …`);
  const fakes = new Child('./fakes.js');
  const urls = await fakes.ask<{ kubeUrl: string; promUrl: string }>({
    cmd: 'seed',
    world: { namespaces: 1, deploymentsPerNamespace: SAMPLES + 20 },
  });
  const { server, port } = await serviceAgainst(urls, true);
  for (let i = SAMPLES; i < SAMPLES + 20; i++)
    await postAlerts(port, [alert('ns-0', `app-${i}`, i)]);
  const warmEvictions = (await fakes.ask<Counts>({ cmd: 'counts' })).evictions;
  await fakes.ask({ cmd: 'prometheus-delay', delayMs: DELAY_MS, times: SAMPLES });
  const sent: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    sent.push(preciseNow());
    await postAlerts(port, [alert('ns-0', `app-${i}`, i)]);
  }
  const evicted = (await fakes.ask<number[]>({ cmd: 'eviction-times' })).slice(warmEvictions);
  await closeServer(server);
  await fakes.stop();
  // Each alert evicts two pods, one after the other: the first eviction ends its latency.
  const beyond = sent.map((t, i) => evicted[2 * i]! - t - DELAY_MS).sort((a, b) => a - b);
  const total = sent.map((t, i) => evicted[2 * i]! - t).sort((a, b) => a - b);
  rows.push({
    what: `alert received → first eviction request sent (ms, p50 / p99; includes the ${METRICS_BATCHING.lingerMs} ms query-merging window)`,
    baseline: `${DELAY_MS} (fake Prometheus delay); total ${fmt(percentile(total, 50), 1)} / ${fmt(percentile(total, 99), 1)}`,
    result: `${fmt(percentile(beyond, 50), 1)} / ${fmt(percentile(beyond, 99), 1)} beyond it`,
    ratio: fmt(percentile(beyond, 50) / DELAY_MS, 2),
    goal: '(informational)',
  });
}

function table(): string {
  const header = ['measurement', 'baseline (same run)', 'result', 'ratio', 'goal'];
  const lines = rows.map((r) => [r.what, r.baseline, r.result, r.ratio, r.goal]);
  return [header, header.map(() => '---'), ...lines]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  // `npm run bench -- thousand latency` runs only those sections (while working on one).
  const only = new Set(process.argv.slice(2));
  const wanted = (name: string) => only.size === 0 || only.has(name);
  if (wanted('throughput')) await throughputAndMemory();
  if (wanted('thousand')) await thousandAlerts();
  if (wanted('decide')) decisionCore();
  if (wanted('latency')) await latency();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${fmt(totalmem() / 2 ** 30, 1)} GiB, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  process.stdout.write(
    `\nmachine: ${machine}; took ${fmt((Date.now() - started) / 1000)} s\n\n${table()}\n`,
  );
}

await main();
