import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ROTATION_ANNOTATION } from '../../src/adapters/cooldown-lease.js';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { FakePrometheus } from '../support/fake-prometheus.js';
import { seedImbalanced, TOKEN } from '../support/harness.js';
import {
  buildDist,
  freePort,
  killIfRunning,
  startProgram,
  waitFor,
  waitForReady,
  type Program,
} from '../support/processes.js';
import { payload } from '../http/payload.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const LEASE = 'pod-rebalancer/payments.api';

beforeAll(buildDist, 120_000);

describe('a one-by-one rotation across two serve processes', () => {
  let kube: FakeKubeApiServer;
  let prom: FakePrometheus;
  let dir: string;
  const programs: Program[] = [];

  /** Starts `serve` as replica `name` against the shared fakes; its URL once it is ready. */
  async function serveReplica(name: string): Promise<{ url: string; program: Program }> {
    const port = await freePort();
    const program = startProgram('node', [CLI, 'serve'], {
      PATH: process.env.PATH,
      PORT: String(port),
      PROMETHEUS_URL: prom.url,
      WEBHOOK_TOKEN: TOKEN,
      KUBECONFIG: join(dir, 'kubeconfig'),
      POD_NAME: name,
      ROTATION: 'one-by-one',
      // Trust the token alone: these fakes serve no rules API.
      ALERT_PROVENANCE: 'off',
      SHUTDOWN_DELAY: '0s',
    });
    programs.push(program);
    const url = `http://127.0.0.1:${port}`;
    await waitForReady(`${url}/readyz`, program);
    return { url, program };
  }

  afterEach(async () => {
    for (const program of programs.splice(0)) await killIfRunning(program.child);
    await Promise.all([kube?.stop(), prom?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when the replica that started the rotation is killed (SIGKILL) between the steps, then the other finishes it, exactly once', async () => {
    kube = await new FakeKubeApiServer().start();
    prom = await new FakePrometheus().start();
    // Removed pods are replaced by a pod that turns Ready only when the test says so.
    kube.replacePods = {};
    seedImbalanced({ kube, prom });
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-rotation-'));
    writeFileSync(join(dir, 'kubeconfig'), kube.kubeConfigText());
    const a = await serveReplica('replica-a');
    const b = await serveReplica('replica-b');

    const response = await fetch(`${a.url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(payload()),
    });
    const report = (await response.json()) as { results: { rotation?: { next: string } }[] };
    await killIfRunning(a.program.child);
    const afterStep1 = kube.removals.map((r) => r.name);
    kube.readyReplacements();
    await waitFor(
      `replica-b to finish the rotation (output: ${b.program.output().slice(-2000)})`,
      () => kube.removals.length >= 2,
      60_000,
    );
    // Long enough for both timers of replica-b to pass again: a second removal would show.
    await waitFor(
      'the rotation to be recorded as done',
      () =>
        /"end":"done"/.test(
          kube.leases.get(LEASE)?.metadata.annotations?.[ROTATION_ANNOTATION] ?? '',
        ),
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 6000));

    expect(response.status).toBe(200);
    expect(report.results[0]!.rotation).toMatchObject({ next: 'api-cold' });
    expect(a.program.child.signalCode).toBe('SIGKILL');
    expect(afterStep1).toEqual(['api-hot']);
    expect(kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
    const coldEvictions = kube.requests.filter(
      (r) => r.method === 'POST' && r.path.endsWith('/pods/api-cold/eviction'),
    );
    expect(coldEvictions).toHaveLength(1);
    const step2Event = kube.events.find(
      (e: { message?: string }) => e.message?.includes('api-cold') && e.message.includes('evicted'),
    );
    expect(step2Event).toMatchObject({ reason: 'Rebalanced', reportingInstance: 'replica-b' });
  }, 120_000);
});
