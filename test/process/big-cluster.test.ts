import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeKubeApiServer, seedFatDeployments } from '../support/fake-kube.js';
import { TOKEN } from '../support/harness.js';
import { buildDist, freePort, killIfRunning, waitFor } from '../support/processes.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

describe('a big cluster', () => {
  let kube: FakeKubeApiServer;
  let child: ChildProcess | undefined;
  let dir: string;
  let output = '';

  beforeAll(buildDist, 120_000);
  afterAll(async () => {
    await killIfRunning(child);
    await kube?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when the cluster holds 5,000 Deployments of 10 KB (a 50 MB list), then serve syncs them page by page under --max-old-space-size=128 and becomes ready', async () => {
    kube = await new FakeKubeApiServer().start();
    seedFatDeployments(kube, 5000);
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-big-'));
    writeFileSync(join(dir, 'kubeconfig'), kube.kubeConfigText());
    const port = await freePort();
    child = spawn('node', ['--max-old-space-size=128', CLI, 'serve'], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        WEBHOOK_TOKEN: TOKEN,
        KUBECONFIG: join(dir, 'kubeconfig'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk).slice(-5000)));
    child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk).slice(-5000)));
    const server = child;

    await waitFor(
      'serve to become ready',
      async () => {
        if (server.exitCode !== null || server.signalCode !== null) {
          throw new Error(`serve died (${server.exitCode ?? server.signalCode}): ${output}`);
        }
        return fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      120_000,
    );

    const lists = kube.collectionLists.filter((l) => l.path === 'deployments');
    expect(lists.length).toBeGreaterThanOrEqual(10);
    expect(lists.every((l) => l.limit === 500)).toBe(true);
  }, 180_000);
});
