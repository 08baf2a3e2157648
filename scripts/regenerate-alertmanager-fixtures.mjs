#!/usr/bin/env node
// Regenerates test/fixtures/alertmanager-0.25/ from a real Alertmanager 0.25: for each fixture it
// starts Alertmanager on loopback with a temporary directory and a config for that case, sends
// alerts through its API (v2), captures what it posts to a loopback webhook, and writes the body
// (pretty-printed JSON, nothing else changed).
//
//   npm run fixtures:regenerate                     # rewrites test/fixtures/alertmanager-0.25/
//   node scripts/regenerate-alertmanager-fixtures.mjs --out /tmp/fixtures
//
// Needs `prometheus-alertmanager` (Debian package of the same name) on PATH, or --alertmanager BIN.
// Refuses another version than 0.25 unless --any-version: the fixtures are named after it.
/* global URL, Buffer, setTimeout, fetch */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: flags } = parseArgs({
  options: {
    out: {
      type: 'string',
      default: new URL('../test/fixtures/alertmanager-0.25/', import.meta.url).pathname,
    },
    alertmanager: { type: 'string', default: 'prometheus-alertmanager' },
    'any-version': { type: 'boolean', default: false },
  },
  strict: true,
});

const EXTERNAL_URL = 'http://alertmanager.monitoring.svc:9093';
const GENERATOR_URL =
  'http://prometheus.monitoring.svc:9090/graph?g0.expr=stddev+by+%28namespace%2C+deployment%29+%28namespace_deployment_pod%3Acpu_usage%3Arate%29+%3E+0.3&g0.tab=1';
/** Every wait is bounded: Alertmanager sends within group_wait (1s); allow for a slow machine. */
const WAIT_MS = 30_000;

const alert = (namespace, deployment) => ({
  labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment, severity: 'warning' },
  annotations: { summary: `CPU imbalance in ${namespace}/${deployment}` },
  generatorURL: GENERATOR_URL,
});

const receiver = (name, extra) =>
  [
    `  - name: ${name}`,
    '    webhook_configs:',
    '      - url: WEBHOOK_URL',
    '        send_resolved: true',
    ...extra.map((line) => `        ${line}`),
  ].join('\n');

const timers = 'group_wait: 1s, group_interval: 1s, repeat_interval: 1h';
const PER_DEPLOYMENT = [
  `route: {receiver: per-deployment, group_by: [namespace, deployment], ${timers}}`,
  'receivers:',
  receiver('per-deployment', [
    'http_config: {authorization: {type: Bearer, credentials: example-token}}',
  ]),
].join('\n');
const GROUPED = [
  `route: {receiver: grouped, group_by: [alertname], ${timers}}`,
  'receivers:',
  receiver('grouped', [
    'http_config: {basic_auth: {username: alertmanager, password: example-password}}',
  ]),
].join('\n');
const TRUNCATED = [
  `route: {receiver: truncated, group_by: [alertname], ${timers}}`,
  'receivers:',
  receiver('truncated', ['max_alerts: 1']),
].join('\n');

/**
 * The fixtures: the Alertmanager config, then the steps. `send` posts alerts (firing unless
 * resolved), `capture` waits for the next notification matching `until` and keeps it.
 */
const CASES = {
  'firing-single.json': {
    config: PER_DEPLOYMENT,
    steps: [{ send: [alert('payments', 'api')] }, { capture: (b) => b.status === 'firing' }],
  },
  'firing-two-deployments.json': {
    config: GROUPED,
    steps: [
      { send: [alert('payments', 'api'), alert('shop', 'web')] },
      { capture: (b) => b.alerts.length === 2 },
    ],
  },
  'mixed-firing-and-resolved.json': {
    config: GROUPED,
    steps: [
      { send: [alert('payments', 'api'), alert('shop', 'web')] },
      { wait: (b) => b.alerts.length === 2 && b.alerts.every((a) => a.status === 'firing') },
      { send: [alert('shop', 'web')], resolved: true },
      { capture: (b) => b.alerts.some((a) => a.status === 'resolved') },
    ],
  },
  'resolved.json': {
    config: PER_DEPLOYMENT,
    steps: [
      { send: [alert('shop', 'web')] },
      { wait: (b) => b.status === 'firing' },
      { send: [alert('shop', 'web')], resolved: true },
      { capture: (b) => b.status === 'resolved' },
    ],
  },
  'truncated.json': {
    config: TRUNCATED,
    steps: [
      { send: [alert('payments', 'api'), alert('shop', 'web')] },
      { capture: (b) => b.truncatedAlerts === 1 },
    ],
  },
};

function checkVersion() {
  const run = spawnSync(flags.alertmanager, ['--version'], { encoding: 'utf8' });
  if (run.error) {
    throw new Error(
      `${flags.alertmanager} not found: install the Debian package prometheus-alertmanager or pass --alertmanager BIN`,
    );
  }
  const version = /version (\d+\.\d+\.\d+)/.exec(`${run.stdout}${run.stderr}`)?.[1];
  if (!version?.startsWith('0.25.') && !flags['any-version']) {
    throw new Error(
      `expected Alertmanager 0.25.x, found ${version ?? 'an unknown version'} (--any-version to proceed)`,
    );
  }
  return version;
}

/** A loopback webhook that answers 200 and hands each body to the current waiter. */
async function startWebhook() {
  const bodies = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200).end();
      for (const waiter of waiters.splice(0)) waiter();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  /** The first body after `from` matching `until`; its index. */
  const next = async (from, until, what) => {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const index = bodies.findIndex((body, i) => i >= from && until(body));
      if (index >= 0) return index;
      if (Date.now() > deadline) throw new Error(`no notification ${what} within ${WAIT_MS} ms`);
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  };
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    bodies,
    next,
    close: () => server.close(),
  };
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitReady(url, child) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Alertmanager exited with ${child.exitCode}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Alertmanager not ready at ${url} within ${WAIT_MS} ms`);
}

/** Posts alerts to Alertmanager's API v2 (resolved ones with an endsAt of now). */
async function sendAlerts(api, alerts, resolved) {
  const now = new Date();
  const body = alerts.map((a) => ({
    ...a,
    startsAt: new Date(now.getTime() - 60_000).toISOString(),
    ...(resolved ? { endsAt: now.toISOString() } : {}),
  }));
  const response = await fetch(`${api}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST /api/v2/alerts answered ${response.status}`);
}

/** One step of a case; returns how many notifications have been consumed. */
async function runStep({ name, api, webhook }, step, seen) {
  if (step.send) {
    await sendAlerts(api, step.send, step.resolved);
    return seen;
  }
  const index = await webhook.next(seen, step.wait ?? step.capture, `for ${name}`);
  if (step.capture) {
    writeFileSync(join(flags.out, name), `${JSON.stringify(webhook.bodies[index], null, 2)}\n`);
  }
  return index + 1;
}

async function runCase(name, { config, steps }) {
  const dir = mkdtempSync(join(tmpdir(), 'alertmanager-fixtures-'));
  const webhook = await startWebhook();
  const port = await freePort();
  writeFileSync(join(dir, 'alertmanager.yml'), config.replaceAll('WEBHOOK_URL', webhook.url));
  const child = spawn(
    flags.alertmanager,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.external-url=${EXTERNAL_URL}`,
      // The external URL has no path, so the API stays at /api/v2 on the listen address.
      '--web.route-prefix=/',
      '--cluster.listen-address=',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (chunk) => (log = (log + chunk).slice(-4000)));
  try {
    const api = `http://127.0.0.1:${port}`;
    await waitReady(`${api}/-/ready`, child);
    let seen = 0;
    for (const step of steps) seen = await runStep({ name, api, webhook }, step, seen);
  } catch (error) {
    throw new Error(`${name}: ${error.message}\nAlertmanager log:\n${log}`);
  } finally {
    child.kill('SIGTERM');
    webhook.close();
    await new Promise((resolve) =>
      child.exitCode !== null ? resolve() : child.once('exit', resolve),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

const version = checkVersion();
mkdirSync(flags.out, { recursive: true });
for (const [name, fixture] of Object.entries(CASES)) {
  await runCase(name, fixture);
  process.stdout.write(`${name}: captured from Alertmanager ${version}\n`);
}
