import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { FakePrometheus } from '../support/fake-prometheus.js';
import { seedImbalanced, TOKEN } from '../support/harness.js';
import { buildDist, freePort, killIfRunning } from '../support/processes.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

async function waitForReady(url: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the service did not become ready in 5 s');
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) =>
    child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve),
  );
}

/** GET on a new connection every time (no keep-alive), so a closed listener shows as refused. */
function freshGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.setTimeout(5000, () => request.destroy(new Error(`no answer from ${url}`)));
    request.on('error', reject);
  });
}

beforeAll(buildDist, 120_000);

describe('pod-rebalancer serve, as a process', () => {
  let kube: FakeKubeApiServer;
  let prom: FakePrometheus;
  let child: ChildProcess | undefined;
  let dir: string;

  /** Starts `serve` as a process against fakes holding one imbalanced Deployment; its URL. */
  async function serveImbalanced(
    shutdownDelay: string,
  ): Promise<{ url: string; server: ChildProcess }> {
    kube = await new FakeKubeApiServer().start();
    prom = await new FakePrometheus().start();
    seedImbalanced({ kube, prom });
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-serve-'));
    writeFileSync(join(dir, 'kubeconfig'), kube.kubeConfigText());
    const port = await freePort();
    child = spawn('node', [CLI, 'serve'], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        PROMETHEUS_URL: prom.url,
        WEBHOOK_TOKEN: TOKEN,
        KUBECONFIG: join(dir, 'kubeconfig'),
        SHUTDOWN_DELAY: shutdownDelay,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { url: `http://127.0.0.1:${port}`, server: child };
  }

  afterEach(async () => {
    await killIfRunning(child);
    await Promise.all([kube?.stop(), prom?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when the configuration is invalid, then it exits 2 with one line per offending variable', () => {
    const result = spawnSync('node', [CLI, 'serve'], {
      env: {
        PATH: process.env.PATH,
        PORT: 'eighty',
        COOLDOWN: 'soon',
        WEBHOOK_TOKEN: 'secret-value',
      },
      encoding: 'utf8',
    });

    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^pod-rebalancer: PORT: expected a whole number from 1 to 65535 \(got "eighty"\)$/,
        ),
        expect.stringMatching(/^pod-rebalancer: COOLDOWN: expected a duration/),
        expect.stringMatching(/^pod-rebalancer: PROMETHEUS_URL: required/),
      ]),
    );
    expect(result.stderr).not.toContain('secret-value');
  });

  it('when SIGTERM arrives during a request, then the request completes, new ones are refused, and it exits 0', async () => {
    // This test is about the drain; the delay before it has its own test below.
    const { url, server } = await serveImbalanced('0s');
    await waitForReady(url, server);
    // The verification query takes a second: SIGTERM lands while the request is in flight.
    prom.fail({ delayMs: 1000 });
    const inFlight = fetch(`${url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        version: '4',
        alerts: [
          {
            status: 'firing',
            fingerprint: 'f1',
            labels: {
              alertname: 'DeploymentCPUImbalance',
              namespace: 'payments',
              deployment: 'api',
            },
          },
        ],
      }),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));

    server.kill('SIGTERM');
    const response = await inFlight;
    const code = await exited(server);

    expect(response.status).toBe(200);
    expect(
      ((await response.json()) as { results: { outcome: string }[] }).results[0]!.outcome,
    ).toBe('rebalanced');
    expect(kube.removals).toHaveLength(2);
    expect(code).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
  it('when SIGTERM arrives, then /readyz fails at once while every new connection is still served for SHUTDOWN_DELAY, then it exits 0', async () => {
    const { url, server } = await serveImbalanced('8s');
    let logs = '';
    server.stdout!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    await waitForReady(url, server);

    server.kill('SIGTERM');
    // The first readiness probe that sees the signal fails; the signal needs a moment to land.
    let ready = 200;
    for (let attempt = 0; attempt < 100 && ready === 200; attempt++) {
      ready = await freshGet(`${url}/readyz`);
      if (ready === 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Endpoints are being removed: requests routed before that still arrive on new connections.
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      during.push(await freshGet(`${url}/healthz`), await freshGet(`${url}/readyz`));
    }
    const stillRunning = server.exitCode === null;

    expect(ready).toBe(503);
    expect(during).toEqual([200, 503, 200, 503, 200, 503, 200, 503, 200, 503]);
    expect(stillRunning).toBe(true);
    expect(logs).toMatch(
      /"message":"shutting down".*"delayMs":8000|"delayMs":8000.*"message":"shutting down"/,
    );
    // After the delay it drains and exits on its own.
    expect(await exited(server)).toBe(0);
    await expect(freshGet(`${url}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
  }, 60_000);
});
