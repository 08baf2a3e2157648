/**
 * Not part of the test suite (jest matches *.test.ts only). Measures `pod-rebalancer backtest`
 * over 7 days at 1-minute steps on a 100-pod Deployment held by a real Prometheus:
 *
 *   [BENCH_DIR=/tmp/bench] NODE_OPTIONS=--experimental-vm-modules npx jest --testMatch '**\/*.bench.ts' test/operator/backtest.bench.ts
 */
import { spawnSync } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from '@jest/globals';
import {
  backtestCommand,
  backtestRequest,
  prometheusHistory,
  simulateDeployment,
  timelineOf,
} from '../../src/operator/backtest.js';
import { EXIT, loadOperatorConfig, runCommand } from '../../src/operator/command.js';
import { freePort, startProgram, waitForReady } from '../support/processes.js';
import { captureIo } from './cli.js';
import { HOUR, MINUTE } from './history-fixture.js';

const PODS = 100;
const MINUTES = 7 * 1440;

/** CPU of pod p at minute m: around 0.5, with ten hot and ten cold pods 90 minutes twice a day. */
function cpu(p: number, m: number): number {
  const episode = m % 720 >= 300 && m % 720 < 390;
  if (episode && p < 10) return 2;
  if (episode && p >= 90) return 0.02;
  return 0.5 + 0.05 * Math.sin(p + m / 90);
}

async function writeHistory(file: string, startMs: number): Promise<void> {
  const out = createWriteStream(file);
  const write = (text: string) =>
    out.write(text) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r()));
  const seconds = (m: number) => (startMs + m * MINUTE) / 1000;
  await write('# TYPE container_cpu_usage_seconds counter\n');
  for (let p = 0; p < PODS; p++) {
    const key = `container_cpu_usage_seconds_total{namespace="bench",pod="big-${p}",container="app"}`;
    let total = 0;
    const lines: string[] = [];
    for (let m = 0; m < MINUTES; m++) {
      lines.push(`${key} ${total.toFixed(2)} ${seconds(m)}\n`);
      total += cpu(p, m) * 60;
    }
    await write(lines.join(''));
  }
  await write('# TYPE kube_pod_owner gauge\n');
  for (let p = 0; p < PODS; p++) {
    const key = `kube_pod_owner{namespace="bench",pod="big-${p}",owner_kind="ReplicaSet",owner_name="big-5d9f"}`;
    await write(Array.from({ length: MINUTES }, (_, m) => `${key} 1 ${seconds(m)}\n`).join(''));
  }
  await write('# TYPE kube_replicaset_owner gauge\n');
  const rs =
    'kube_replicaset_owner{namespace="bench",replicaset="big-5d9f",owner_kind="Deployment",owner_name="big"}';
  await write(Array.from({ length: MINUTES }, (_, m) => `${rs} 1 ${seconds(m)}\n`).join(''));
  await write('# EOF\n');
  await new Promise<void>((resolve) => out.end(() => resolve()));
}

/** Builds the blocks, or reuses them from BENCH_DIR (kept between runs) when they are there. */
async function prepare(): Promise<{ dir: string; startMs: number; keep: boolean }> {
  const kept = process.env.BENCH_DIR;
  if (kept && existsSync(join(kept, 'start'))) {
    return { dir: kept, startMs: Number(readFileSync(join(kept, 'start'), 'utf8')), keep: true };
  }
  const dir = kept ?? mkdtempSync(join(tmpdir(), 'pod-rebalancer-bench-'));
  mkdirSync(dir, { recursive: true });
  const startMs = Math.floor(Date.now() / HOUR) * HOUR - 8 * 24 * HOUR;
  await writeHistory(join(dir, 'history.om'), startMs);
  const built = spawnSync(
    'promtool',
    ['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'history.om'), join(dir, 'data')],
    {
      encoding: 'utf8',
    },
  );
  expect(built.status).toBe(0);
  rmSync(join(dir, 'history.om'));
  writeFileSync(join(dir, 'start'), String(startMs));
  return { dir, startMs, keep: kept !== undefined };
}

it('backtests 7 days at 1m steps of a 100-pod Deployment', async () => {
  let t = Date.now();
  const { dir, startMs, keep } = await prepare();
  const setup = Date.now() - t;
  writeFileSync(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  const port = await freePort();
  const prometheus = startProgram('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--storage.tsdb.retention.time=3650d',
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  try {
    await waitForReady(`http://127.0.0.1:${port}/-/ready`, prometheus, 120_000);
    const range = [
      '--from',
      new Date(startMs + 30 * MINUTE).toISOString(),
      '--to',
      new Date(startMs + MINUTES * MINUTE).toISOString(),
    ];
    const url = `http://127.0.0.1:${port}`;
    const args = ['--namespace', 'bench', '--deployment', 'big', ...range];
    const timings: number[] = [];
    let out = '';
    for (let run = 0; run < 3; run++) {
      const io = captureIo({ PROMETHEUS_URL: url });
      t = Date.now();
      const code = await runCommand(io, () =>
        backtestCommand([...args, '--report', join(dir, 'r.html')], io),
      );
      timings.push(Date.now() - t);
      expect(code).toBe(EXIT.done);
      out = io.out();
    }
    // Where the time goes: the range queries, then the simulation of three thresholds.
    const config = loadOperatorConfig({ PROMETHEUS_URL: url });
    const request = backtestRequest(args, config, new Date());
    t = Date.now();
    const history = await prometheusHistory(config, 60_000).podCpu(
      { namespace: 'bench', deployment: 'big' },
      { timeline: timelineOf(request), rateWindowMs: request.rule.rateWindowMs },
    );
    const fetchMs = Date.now() - t;
    t = Date.now();
    simulateDeployment(history, request);
    const simulateMs = Date.now() - t;
    process.stdout.write(
      `setup ${setup} ms; backtest runs ${timings.join(', ')} ms (queries ${fetchMs} ms, simulation ${simulateMs} ms)\n${out.split('\n').slice(0, 10).join('\n')}\n`,
    );
  } finally {
    await prometheus.stop();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}, 900_000);
