import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { describeCluster } from '../../src/adapters/kubeconfig.js';
import { buildDist, runCli } from '../operator/cli.js';
import { seedImbalanced, startHarness, TOKEN, type Harness } from '../support/harness.js';
import { freePort } from '../support/processes.js';

const COMMANDS = ['serve', 'replay', 'backtest', 'check'] as const;
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
const FIXTURE = new URL('../fixtures/alertmanager-0.25/firing-single.json', import.meta.url)
  .pathname;

let home: string;
beforeAll(() => {
  buildDist();
  // An empty HOME: no ~/.kube/config of the machine running the tests can leak in.
  home = mkdtempSync(join(tmpdir(), 'pod-rebalancer-home-'));
}, 120_000);
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** A configuration serve would start with, so that only the flag under test can stop it. */
async function serveEnv(kubeconfig: string): Promise<Record<string, string>> {
  return {
    HOME: home,
    PORT: String(await freePort()),
    PROMETHEUS_URL: 'http://127.0.0.1:1',
    WEBHOOK_TOKEN: TOKEN,
    KUBECONFIG: kubeconfig,
  };
}

describe('every command answers --help and --version', () => {
  it('when asked for the version, then it prints the package.json version and exits 0', async () => {
    const runs = [];
    for (const args of [[], ...COMMANDS.map((command) => [command])]) {
      runs.push(await runCli([...args, '--version'], { timeoutMs: 30_000 }));
    }

    expect(runs.map((r) => [r.code, r.stdout])).toEqual(
      runs.map(() => [0, `pod-rebalancer ${VERSION}\n`]),
    );
  }, 120_000);

  it.each(COMMANDS)(
    'when asked "%s --help", then it prints its usage and exits 0',
    async (command) => {
      const run = await runCli([command, '--help'], { env: { HOME: home } });

      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`usage: pod-rebalancer ${command}`);
      expect(run.stdout).toMatch(/exit codes:/);
    },
  );

  it.each(['serve', 'replay', 'check', 'status', 'resume'])(
    'when asked "%s --help", then it documents --kubeconfig and --context',
    async (command) => {
      const run = await runCli([command, '--help']);

      expect(run.stdout).toMatch(/--kubeconfig FILE/);
      expect(run.stdout).toMatch(/--context NAME/);
    },
  );
});

describe('every command refuses what it does not understand, with exit 2', () => {
  let dir: string;
  let kubeconfig: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-cli-'));
    kubeconfig = join(dir, 'kubeconfig');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    [['serve', '--bogus'], /unknown flag --bogus/],
    [
      ['serve', '--dry-run'],
      /unknown flag --dry-run; the configuration is the environment: set DRY_RUN=/,
    ],
    [['serve', 'now'], /unexpected argument "now"/],
    [['check', '--bogus'], /unknown flag --bogus/],
    [['check', 'extra', 'words'], /unexpected arguments "extra", "words"/],
    [['backtest', '--bogus'], /unknown flag --bogus/],
    [['backtest', 'extra'], /unexpected argument "extra"/],
    [['replay', FIXTURE, '--bogus'], /unknown flag --bogus/],
    [['replay', FIXTURE, FIXTURE], /replay needs exactly one FILE/],
  ])(
    'when run as %j, then it exits 2 naming the problem and starts nothing',
    async (args, message) => {
      writeFileSync(kubeconfig, fakeKubeconfig('http://127.0.0.1:1'));
      // A configuration serve would start with: without the check it would listen until killed.
      const run = await runCli(args, { env: await serveEnv(kubeconfig), timeoutMs: 10_000 });

      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
    },
  );
});

/** A kubeconfig with two contexts, `fake` (current) and `other`, and a bearer token. */
function fakeKubeconfig(server: string): string {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'fake', server, skipTLSVerify: true },
      { name: 'elsewhere', server: 'http://127.0.0.1:1', skipTLSVerify: true },
    ],
    users: [{ name: 'operator', token: 'kube-secret-token-9f3a' }],
    contexts: [
      { name: 'fake', cluster: 'fake', user: 'operator' },
      { name: 'other', cluster: 'elsewhere', user: 'operator' },
    ],
    currentContext: 'fake',
  });
  return kc.exportConfig();
}

describe('where the cluster is: KUBECONFIG, --kubeconfig and --context', () => {
  let h: Harness;
  let dir: string;
  let kubeconfig: string;
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-cli-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fakeKubeconfig(h.kube.url));
  });
  afterEach(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([[['serve']], [['replay', FIXTURE]]])(
    'when KUBECONFIG names a missing file, then %j exits 2 naming KUBECONFIG, not ENOENT',
    async (args) => {
      const env = { ...(await serveEnv('/nonexistent')), PROMETHEUS_URL: h.prom.url };

      const run = await runCli(args, { env, timeoutMs: 10_000 });

      expect(run.code).toBe(2);
      expect(run.stderr).toContain('pod-rebalancer: KUBECONFIG: no such file: /nonexistent');
      expect(run.stderr).not.toMatch(/ENOENT|at .*\.js:\d+/);
    },
  );

  it('when check is given a missing kubeconfig, then its Kubernetes line fails naming the flag', async () => {
    const env = { HOME: home, PROMETHEUS_URL: h.prom.url, WEBHOOK_TOKEN: TOKEN };

    const run = await runCli(['check', '--kubeconfig', join(dir, 'missing')], { env });

    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `FAIL  kubernetes: --kubeconfig: no such file: ${join(dir, 'missing')}`,
    );
  });

  it('when neither KUBECONFIG, ~/.kube/config nor a service account exists, then serve exits 2 saying what to set', async () => {
    const env = await serveEnv('');

    const run = await runCli(['serve'], { env, timeoutMs: 10_000 });

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /KUBECONFIG: no kubeconfig found .*set KUBECONFIG or pass --kubeconfig/,
    );
  });

  it('when --context names a context the kubeconfig lacks, then it exits 2 listing the ones it has', async () => {
    const run = await runCli(['replay', FIXTURE, '--kubeconfig', kubeconfig, '--context', 'prod'], {
      env: { HOME: home, PROMETHEUS_URL: h.prom.url },
    });

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      '--context: no context "prod" in the kubeconfig (it has: fake, other)',
    );
  });

  it('when replay --execute runs, then it first prints the context and API server, never the token, and acts there', async () => {
    const run = await runCli(['replay', FIXTURE, '--execute', '--kubeconfig', kubeconfig], {
      env: { HOME: home, PROMETHEUS_URL: h.prom.url },
    });

    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      `pod-rebalancer: acting on context fake, server ${h.kube.url}, user operator`,
    );
    expect(`${run.stdout}${run.stderr}`).not.toContain('kube-secret-token-9f3a');
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when --context picks another cluster, then replay --execute names it and acts there, not on the current one', async () => {
    const run = await runCli(
      ['replay', FIXTURE, '--execute', '--kubeconfig', kubeconfig, '--context', 'other', '--json'],
      { env: { HOME: home, PROMETHEUS_URL: h.prom.url } },
    );

    expect(run.stderr).toContain(
      'pod-rebalancer: acting on context other, server http://127.0.0.1:1, user operator',
    );
    expect(h.kube.removals).toHaveLength(0);
    expect(run.code).toBe(1);
  });

  it('when serve is given --kubeconfig, then it uses that file over KUBECONFIG', async () => {
    const env = { ...(await serveEnv('/nonexistent')), PROMETHEUS_URL: h.prom.url };

    const run = await runCli(['serve', '--kubeconfig', join(dir, 'missing')], {
      env,
      timeoutMs: 10_000,
    });

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`--kubeconfig: no such file: ${join(dir, 'missing')}`);
    expect(run.stderr).not.toContain('/nonexistent');
  });
});

describe('describeCluster', () => {
  it('when the server URL carries a user and password, then both are masked', () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://admin:hunter2@api.example:6443' }],
      users: [{ name: 'u', password: 'p4ss' }],
      contexts: [{ name: 'prod', cluster: 'c', user: 'u' }],
      currentContext: 'prod',
    });

    const line = describeCluster(kc);

    expect(line).toBe('context prod, server https://***@api.example:6443, user u');
  });
});
