import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { EXIT, runCommand } from '../../src/operator/command.js';
import { resumeCommand, statusCommand } from '../../src/operator/status.js';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { ownedBy } from '../support/harness.js';
import { buildDist, captureIo, runCli } from './cli.js';
import { budgetLeaseAt, cooldownLeaseAt } from './leases.js';

const MINUTE = 60_000;

function cooldownLease(
  namespace: string,
  deployment: string,
  options: { startedMsAgo: number; seconds?: number; ineffective?: number; stopped?: string },
) {
  return cooldownLeaseAt(
    namespace,
    deployment,
    new Date(Date.now() - options.startedMsAgo),
    options,
  );
}

let kube: FakeKubeApiServer;
beforeEach(async () => {
  kube = await new FakeKubeApiServer().start();
  kube.leases.set(
    'pod-rebalancer/payments.api',
    cooldownLease('payments', 'api', { startedMsAgo: 5 * MINUTE, seconds: 900 }),
  );
  kube.leases.set(
    'pod-rebalancer/shop.web',
    cooldownLease('shop', 'web', {
      startedMsAgo: 90 * MINUTE,
      ineffective: 3,
      stopped: '3 consecutive actions did not lower the CPU stddev',
    }),
  );
  const ago = (ms: number) => new Date(Date.now() - ms);
  kube.leases.set(
    'pod-rebalancer/pod-rebalancer-action-budget',
    budgetLeaseAt([ago(5 * MINUTE), ago(30 * MINUTE), ago(2 * 60 * MINUTE)]),
  );
});
afterEach(() => kube.stop());

const run = async (
  command: typeof statusCommand,
  args: string[],
  env: Record<string, string> = {},
) => {
  const io = captureIo(env, { kubeConfig: kube.kubeConfig() });
  const code = await runCommand(io, () => command(args, io));
  return { code, out: io.out(), err: io.err() };
};

describe('pod-rebalancer status', () => {
  it('when Deployments have state, then each is one line (cooldown, ineffective count, stop mark, last action) and the budget left follows', async () => {
    const { code, out } = await run(statusCommand, []);

    expect(code).toBe(EXIT.done);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^payments\/api {2}cooldown until \S+ {2}0 ineffective in a row {2}acting {2}last action \S+: api-hot, api-cold$/,
    );
    expect(lines[1]).toMatch(
      /^shop\/web {2}no cooldown {2}3 ineffective in a row {2}STOPPED \(3 consecutive actions did not lower the CPU stddev\)/,
    );
    // Two of the three recorded actions are inside the default 20/1h window.
    expect(lines[2]).toBe('action budget: 18 left (2 used of 20/1h)');
  });

  it('when --json is given, then it prints the same state as JSON, with ACTION_BUDGET applied', async () => {
    const { out } = await run(statusCommand, ['--json'], { ACTION_BUDGET: '5/3h' });

    const parsed = JSON.parse(out);
    expect(parsed.deployments.map((d: { deployment: string }) => d.deployment)).toEqual([
      'payments/api',
      'shop/web',
    ]);
    expect(parsed.deployments[1]).toMatchObject({
      consecutiveIneffective: 3,
      cooldownUntil: null,
    });
    expect(parsed.budget).toEqual({ budget: '5/3h', used: 3, left: 2 });
  });

  it('when a one-by-one rotation is between its steps, then its line says the step, the pod that follows, what it waits for (read from the API server) and the deadline', async () => {
    const deadline = new Date(Date.now() + 8 * MINUTE);
    const lease = kube.leases.get('pod-rebalancer/payments.api')!;
    lease.metadata.annotations['pod-rebalancer.io/rotation'] = JSON.stringify({
      step: 'waiting',
      first: { name: 'api-hot', uid: 'uid-api-hot', cpu: 1.8 },
      next: { name: 'api-cold', uid: 'uid-api-cold', cpu: 0.05 },
      known: ['uid-api-hot', 'uid-api-cold'],
      startedAt: new Date(Date.now() - 2 * MINUTE).toISOString(),
      deadline: deadline.toISOString(),
      alertname: 'DeploymentCPUImbalance',
      stats: { count: 2, mean: 0.9, stddev: 0.9, min: 0.05, max: 1.8 },
    });
    kube.addDeployment({
      metadata: { namespace: 'payments', name: 'api', uid: 'uid-api', generation: 1 },
      spec: { replicas: 2, selector: { matchLabels: { app: 'api' } } },
      status: { observedGeneration: 1, availableReplicas: 1, readyReplicas: 1 },
    });
    const pod = (name: string, ready: boolean) => ({
      metadata: { namespace: 'payments', name, uid: `uid-${name}`, ...ownedBy('api') },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      },
    });
    kube.addPod(pod('api-cold', true));
    kube.addPod(pod('api-hot-r1', false));

    const text = await run(statusCommand, []);
    const json = JSON.parse((await run(statusCommand, ['--json'])).out);

    expect(text.out.split('\n')[0]).toContain(
      `rotation 1 of 2: api-cold next, waiting for replacement: the replacement of api-hot is not Running and Ready yet, until ${deadline.toISOString()}`,
    );
    expect(json.deployments[0].rotation).toEqual({
      step: 1,
      of: 2,
      next: 'api-cold',
      waitingFor: 'replacement: the replacement of api-hot is not Running and Ready yet',
      deadline: deadline.toISOString(),
    });
    expect(json.deployments[1].rotation).toBeNull();
  });

  it('when STATE_NAMESPACE names another namespace, then it reads the Leases there', async () => {
    const { out } = await run(statusCommand, [], { STATE_NAMESPACE: 'elsewhere' });

    expect(out).toContain('no Deployment has state yet');
    expect(kube.requests.every((r) => r.path.includes('/namespaces/elsewhere/'))).toBe(true);
  });

  it('when given an unknown flag, then it exits 2', async () => {
    const { code, err } = await run(statusCommand, ['--all']);

    expect(code).toBe(EXIT.badInput);
    expect(err).toContain('unknown flag --all');
  });
});

describe('status and resume: --kubeconfig and --context pick the cluster', () => {
  let dir: string;
  let kubeconfig: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-status-'));
    kubeconfig = join(dir, 'kubeconfig');
    // The current context is a dead cluster; only --context reaches the fake API server.
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'dead', server: 'http://127.0.0.1:1', skipTLSVerify: true },
        { name: 'fake', server: kube.url, skipTLSVerify: true },
      ],
      users: [{ name: 'operator', token: 'fake-kube-token' }],
      contexts: [
        { name: 'current', cluster: 'dead', user: 'operator' },
        { name: 'staging', cluster: 'fake', user: 'operator' },
      ],
      currentContext: 'current',
    });
    writeFileSync(kubeconfig, kc.exportConfig());
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const runWith = async (command: typeof statusCommand, args: string[]) => {
    // No kubeConfig from the test: the command builds its own from the flags.
    const io = captureIo({});
    const code = await runCommand(io, () => command(args, io));
    return { code, out: io.out(), err: io.err() };
  };

  it('when status is given --kubeconfig and --context, then it reads the Leases of that cluster', async () => {
    const { code, out } = await runWith(statusCommand, [
      '--kubeconfig',
      kubeconfig,
      '--context',
      'staging',
    ]);

    expect(code).toBe(EXIT.done);
    expect(out).toMatch(/^payments\/api {2}cooldown until/m);
  });

  it('when resume is given --kubeconfig and --context, then it clears the stop mark in that cluster', async () => {
    const { code, out } = await runWith(resumeCommand, [
      'shop/web',
      '--kubeconfig',
      kubeconfig,
      '--context',
      'staging',
    ]);

    expect(code).toBe(EXIT.done);
    expect(out).toContain('resumed shop/web');
    const lease = kube.leases.get('pod-rebalancer/shop.web');
    expect(lease?.metadata.annotations['pod-rebalancer.io/ineffective']).toBeUndefined();
  });

  it('when --context names a context the kubeconfig lacks, then status exits 2 naming it', async () => {
    const { code, err } = await runWith(statusCommand, [
      '--kubeconfig',
      kubeconfig,
      '--context',
      'prod',
    ]);

    expect(code).toBe(EXIT.badInput);
    expect(err).toContain('--context: no context "prod"');
  });
});

describe('pod-rebalancer resume', () => {
  it('when the Deployment is stopped, then the stop mark and the count are cleared at the Lease resourceVersion', async () => {
    const { code, out } = await run(resumeCommand, ['shop/web']);

    expect(code).toBe(EXIT.done);
    expect(out).toBe('resumed shop/web: the stop mark is cleared; the next alert may act\n');
    const lease = kube.leases.get('pod-rebalancer/shop.web')!;
    expect(lease.metadata.annotations['pod-rebalancer.io/ineffective']).toBeUndefined();
    expect(lease.metadata.annotations['pod-rebalancer.io/consecutive-ineffective']).toBe('0');
    const put = kube.requests.find((r) => r.method === 'PUT');
    expect(put?.body?.metadata?.resourceVersion).toBe('10');
  });

  it('when the Lease changes between read and write, then it reads again and clears it on the fresh version', async () => {
    let bumped = false;
    kube.afterRequest = (method, path) => {
      if (!bumped && method === 'GET' && path.endsWith('/leases/shop.web')) {
        bumped = true;
        kube.leases.get('pod-rebalancer/shop.web')!.metadata.resourceVersion = '12';
      }
    };

    const { code } = await run(resumeCommand, ['shop/web']);

    expect(code).toBe(EXIT.done);
    expect(kube.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
    expect(
      kube.leases.get('pod-rebalancer/shop.web')!.metadata.annotations[
        'pod-rebalancer.io/ineffective'
      ],
    ).toBeUndefined();
  });

  it('when the Deployment is not stopped, then it says so and writes nothing', async () => {
    const { code, out } = await run(resumeCommand, ['payments/api']);

    expect(code).toBe(EXIT.done);
    expect(out).toBe('payments/api is not stopped; nothing to do\n');
    expect(kube.requests.filter((r) => r.method === 'PUT')).toEqual([]);
  });

  it('when pod-rebalancer holds no state for it, then it exits 1 naming where it looked', async () => {
    const { code, err } = await run(resumeCommand, ['payments/web']);

    expect(code).toBe(EXIT.failure);
    expect(err).toContain('no state for payments/web in namespace pod-rebalancer');
  });

  it.each([[[]], [['payments']], [['a/b', 'c/d']], [['--force', 'a/b']]])(
    'when called with %j, then it exits 2 saying what it expects',
    async (args) => {
      const { code } = await run(resumeCommand, args);

      expect(code).toBe(EXIT.badInput);
    },
  );
});

describe('status and resume as commands', () => {
  beforeAll(() => buildDist(), 120_000);

  it('when asked for --help, then each prints its usage and exits 0', async () => {
    const status = await runCli(['status', '--help'], { env: {} });
    const resume = await runCli(['resume', '--help'], { env: {} });

    expect(status.code).toBe(0);
    expect(status.stdout).toContain('usage: pod-rebalancer status');
    expect(resume.code).toBe(0);
    expect(resume.stdout).toContain('usage: pod-rebalancer resume NAMESPACE/DEPLOYMENT');
  });
});
