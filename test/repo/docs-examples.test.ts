import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { checkCommand } from '../../src/operator/check.js';
import { runCommand, type OperatorIo } from '../../src/operator/command.js';
import { replayCommand } from '../../src/operator/replay.js';
import { statusCommand } from '../../src/operator/status.js';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { seedImbalanced, startHarness } from '../support/harness.js';
import { captureIo } from '../operator/cli.js';
import { FakeSeriesPrometheus } from '../operator/fake-series-prometheus.js';
import { budgetLeaseAt, cooldownLeaseAt } from '../operator/leases.js';
import { repoRoot } from '../rules/tools.js';

/**
 * The `check`, `replay` and `status` examples of docs/cli.md are the commands' real output,
 * run here against the test doubles. Each sits between `<!-- example: NAME -->` and
 * `<!-- /example -->`; this test fails when one differs from what the command prints today.
 *
 *   npm run docs:examples     rewrites them (DOCS_EXAMPLES=write), then this test passes
 */
const DOC = 'docs/cli.md';
const WRITE = process.env.DOCS_EXAMPLES === 'write';

/** Loopback addresses vary per run; the docs show these instead. */
const SHOWN_PROMETHEUS = 'http://127.0.0.1:9090';
const SHOWN_KUBERNETES = 'http://127.0.0.1:6443';
const SHOWN_ALERTMANAGER = 'http://127.0.0.1:9093';
/** The "now" the docs' timestamps are shown relative to. */
const SHOWN_NOW = Date.parse('2026-11-30T17:35:10.000Z');
const MINUTE = 60_000;

/** Runs one command function with captured output; the command line is what the docs show. */
async function run(
  shown: string,
  command: (argv: string[], io: OperatorIo) => Promise<number>,
  argv: string[],
  io: ReturnType<typeof captureIo>,
): Promise<string> {
  await runCommand(io, () => command(argv, io) as Promise<0 | 1 | 2>);
  return `$ ${shown}\n${io.out()}`;
}

/** Every ISO timestamp moved from the run's real clock onto SHOWN_NOW. */
function shiftTimes(text: string, realNow: number): string {
  return text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, (at) =>
    new Date(SHOWN_NOW + (Date.parse(at) - realNow)).toISOString(),
  );
}

/** `check` against a Prometheus without kube_replicaset_owner and without the rule, an API server denying evictions, and a token file that is not there. */
async function checkExample(): Promise<string> {
  const kube = await new FakeKubeApiServer().start();
  const prom = await new FakeSeriesPrometheus().start();
  try {
    prom.series.set('container_cpu_usage_seconds_total', 1843);
    prom.series.set('kube_pod_owner', 412);
    kube.allow = (a) => a.namespace !== 'kube-node-lease' && a.subresource !== 'eviction';
    const io = captureIo(
      { PROMETHEUS_URL: prom.url, WEBHOOK_TOKEN_FILE: '/var/run/secrets/pod-rebalancer/token' },
      { kubeConfig: kube.kubeConfig() },
    );
    const text = await run('pod-rebalancer check', checkCommand, [], io);
    return text.split(prom.url).join(SHOWN_PROMETHEUS).split(kube.url).join(SHOWN_KUBERNETES);
  } finally {
    await Promise.all([kube.stop(), prom.stop()]);
  }
}

/** `check --alertmanager` against an Alertmanager whose running config has a catch-all first. */
async function checkAlertmanagerExample(): Promise<string> {
  const shipped = readFileSync(join(repoRoot, 'deploy/alertmanager/alertmanager.yml'), 'utf8');
  const original = shipped
    .replace(
      'routes:\n',
      'routes:\n    - receiver: team-oncall\n      matchers: [\'severity=~"warning|critical"\']\n',
    )
    .replace('receivers:\n', 'receivers:\n  - name: team-oncall\n');
  const server: Server = createServer((_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ config: { original } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const io = captureIo({});
    const text = await run(
      `pod-rebalancer check --alertmanager ${SHOWN_ALERTMANAGER} --namespace shop`,
      checkCommand,
      ['--alertmanager', url, '--namespace', 'shop'],
      io,
    );
    return text.split(url).join(SHOWN_ALERTMANAGER);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** `replay` of the captured single-alert payload against an imbalanced payments/api. */
async function replayExample(): Promise<string> {
  const h = await startHarness();
  try {
    seedImbalanced(h, 'payments', 'api');
    const file = 'test/fixtures/alertmanager-0.25/firing-single.json';
    const io = captureIo({ PROMETHEUS_URL: h.prom.url }, { kubeConfig: h.kube.kubeConfig() });
    return await run(
      `pod-rebalancer replay ${file}`,
      replayCommand,
      [join(repoRoot, file)],
      io,
    ).then((text) => text.split(join(repoRoot, file)).join(file));
  } finally {
    await h.stop();
  }
}

/** `status`, text and JSON, with one Deployment in its cooldown and one stopped. */
async function statusExamples(): Promise<[string, string]> {
  const kube = await new FakeKubeApiServer().start();
  const now = Date.now();
  try {
    kube.leases.set(
      'pod-rebalancer/payments.api',
      cooldownLeaseAt('payments', 'api', new Date(now - 5 * MINUTE), { seconds: 900 }),
    );
    kube.leases.set(
      'pod-rebalancer/shop.web',
      cooldownLeaseAt('shop', 'web', new Date(now - 90 * MINUTE), {
        ineffective: 3,
        stopped: '3 consecutive actions did not lower the CPU stddev',
      }),
    );
    kube.leases.set(
      'pod-rebalancer/pod-rebalancer-action-budget',
      budgetLeaseAt([5, 30, 120].map((minutes) => new Date(now - minutes * MINUTE))),
    );
    const text = await run(
      'pod-rebalancer status',
      statusCommand,
      [],
      captureIo({}, { kubeConfig: kube.kubeConfig() }),
    );
    const json = await run(
      'ACTION_BUDGET=5/3h pod-rebalancer status --json',
      statusCommand,
      ['--json'],
      captureIo({ ACTION_BUDGET: '5/3h' }, { kubeConfig: kube.kubeConfig() }),
    );
    return [shiftTimes(text, now), shiftTimes(json, now)];
  } finally {
    await kube.stop();
  }
}

/** Every example block of the doc: `<!-- example: NAME -->` then a fenced block. */
const BLOCK = /(<!-- example: ([\w-]+) -->\n```\n)([\s\S]*?)(```\n<!-- \/example -->)/g;

describe(`the command examples in ${DOC}`, () => {
  it(`are what the commands print against the test doubles${WRITE ? ' (rewriting them)' : ' (npm run docs:examples rewrites them)'}`, async () => {
    const [status, statusJson] = await statusExamples();
    const produced: Record<string, string> = {
      check: await checkExample(),
      'check-alertmanager': await checkAlertmanagerExample(),
      replay: await replayExample(),
      status,
      'status-json': statusJson,
    };
    const path = join(repoRoot, DOC);
    const doc = readFileSync(path, 'utf8');
    const found = [...doc.matchAll(BLOCK)].map((m) => m[2]);
    expect(found.sort()).toEqual(Object.keys(produced).sort());

    const regenerated = doc.replace(
      BLOCK,
      (_all, open: string, name: string, _old, close: string) =>
        `${open}${produced[name]!.trimEnd()}\n${close}`,
    );
    if (WRITE) writeFileSync(path, regenerated);
    const stale = [...doc.matchAll(BLOCK)]
      .filter((m) => `${m[3]}` !== `${produced[m[2]!]!.trimEnd()}\n`)
      .map((m) => m[2]);

    expect(WRITE ? [] : stale).toEqual([]);
  }, 120_000);
});
