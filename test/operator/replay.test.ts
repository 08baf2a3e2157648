import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { EXIT, runCommand } from '../../src/operator/command.js';
import { replayCommand } from '../../src/operator/replay.js';
import { seedImbalanced, startHarness, TOKEN, type Harness } from '../support/harness.js';
import {
  freePort,
  requireProgram,
  startProgram,
  waitFor,
  waitForReady,
  type Program,
} from '../support/processes.js';
import { buildDist, captureIo, runCli } from './cli.js';

const FIXTURES = new URL('../fixtures/alertmanager-0.25/', import.meta.url).pathname;
const fixture = (name: string) => join(FIXTURES, name);

/** Requests that change something in the API server (SelfSubjectAccessReviews aside). */
function writes(h: Harness) {
  return h.kube.requests.filter((r) => r.method !== 'GET');
}

/** Alertmanager API v2 alerts as `amtool alert query -o json` prints them (0.25, captured). */
function apiV2Alerts(states: Record<string, 'active' | 'suppressed' | 'unprocessed'>) {
  return Object.entries(states).map(([target, state], i) => {
    const [namespace, deployment] = target.split('/');
    return {
      annotations: { summary: `CPU imbalance in ${target}` },
      endsAt: '2026-11-29T02:42:37.606Z',
      fingerprint: `f${i}0f0b57164017`,
      receivers: [{ name: 'pod-rebalancer' }],
      startsAt: '2026-11-28T16:44:56.709Z',
      status: { inhibitedBy: [], silencedBy: state === 'suppressed' ? ['1ad8a8d3'] : [], state },
      updatedAt: '2026-11-29T02:37:37.606Z',
      labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment, severity: 'warning' },
    };
  });
}

const API_REPORT = expect.objectContaining({
  namespace: 'payments',
  deployment: 'api',
  outcome: 'dry-run',
  reason: 'imbalanced',
  pods: [
    { name: 'api-hot', cpu: 1.8, role: 'highest', result: 'would-evict' },
    { name: 'api-cold', cpu: 0.05, role: 'lowest', result: 'would-evict' },
  ],
});

describe('pod-rebalancer replay, through the webhook pipeline', () => {
  let h: Harness;
  let dir: string;
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'shop', 'web');
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-replay-'));
  });
  afterEach(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const io = (stdin?: string) =>
    captureIo({ PROMETHEUS_URL: h.prom.url }, { kubeConfig: h.kube.kubeConfig(), stdin });
  const replay = async (args: string[], stdin?: string) => {
    const captured = io(stdin);
    const code = await runCommand(captured, () => replayCommand(args, captured));
    return { code, out: captured.out(), err: captured.err() };
  };
  const json = (out: string) => JSON.parse(out) as { mode: string; results: unknown[] };

  it.each([
    ['firing-single.json', [API_REPORT]],
    [
      'firing-two-deployments.json',
      [
        API_REPORT,
        expect.objectContaining({ namespace: 'shop', deployment: 'web', outcome: 'dry-run' }),
      ],
    ],
    [
      'mixed-firing-and-resolved.json',
      [
        API_REPORT,
        expect.objectContaining({ deployment: 'web', outcome: 'skipped', reason: 'resolved' }),
      ],
    ],
    [
      'resolved.json',
      [expect.objectContaining({ deployment: 'web', outcome: 'skipped', reason: 'resolved' })],
    ],
    ['truncated.json', [API_REPORT]],
  ])(
    'when %s is replayed, then it is decided as the webhook would and nothing is written',
    async (name, expected) => {
      const { code, out } = await replay([fixture(name), '--json']);

      expect(code).toBe(EXIT.done);
      expect(json(out)).toMatchObject({ mode: 'observe-only', results: expected });
      expect(json(out).results).toHaveLength(expected.length);
      expect(writes(h)).toEqual([]);
      expect(h.kube.leases.size).toBe(0);
    },
  );

  it('when no rule has the alert active now, then replay still decides it and reports it unconfirmed (an operator acts with their own credentials)', async () => {
    h.prom.ruleAlerts.splice(0);

    const { code, out } = await replay([fixture('firing-single.json'), '--json']);

    expect(code).toBe(EXIT.done);
    expect(json(out).results).toEqual([
      expect.objectContaining({
        outcome: 'dry-run',
        provenance: expect.stringMatching(/^unconfirmed: not confirmed by the rule engine/),
      }),
    ]);
    const text = await replay([fixture('firing-single.json')]);
    expect(text.out).toContain('rule      unconfirmed: ');
  });

  it('when the rule has the alert active, then replay reports it confirmed; when the rule engine is down, not checked', async () => {
    const confirmed = await replay([fixture('firing-single.json'), '--json']);
    expect(json(confirmed.out).results).toEqual([
      expect.objectContaining({ provenance: 'confirmed: the rule engine has this alert active' }),
    ]);

    h.prom.fail({ rules: true, status: 503 });
    const down = await replay([fixture('firing-single.json'), '--json']);
    expect(json(down.out).results).toEqual([
      expect.objectContaining({
        outcome: 'dry-run',
        provenance: expect.stringMatching(/^not checked: rule engine \(RULES_URL\)/),
      }),
    ]);
  });

  it('when the payload was truncated by Alertmanager, then it says so on stderr', async () => {
    const { err } = await replay([fixture('truncated.json')]);

    expect(err).toContain('Alertmanager truncated 1 alert(s)');
  });

  it('when --execute is given, then it acts as the service: Lease, Event and both pods evicted', async () => {
    const { code, out } = await replay([fixture('firing-single.json'), '--execute', '--json']);

    expect(code).toBe(EXIT.done);
    expect(json(out)).toMatchObject({
      mode: 'execute',
      results: [
        {
          deployment: 'api',
          outcome: 'rebalanced',
          pods: [{ result: 'evicted' }, { result: 'evicted' }],
        },
      ],
    });
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
    expect(h.kube.leases.has('pod-rebalancer/payments.api')).toBe(true);
    expect(h.kube.events.map((e) => e.reason)).toContain('Rebalanced');
  });

  it('when --execute acts together (the default), then it says so and both pods are gone', async () => {
    const { out } = await replay([fixture('firing-single.json'), '--execute']);

    expect(out).toMatch(/^ {2}rotation {2}together \(configuration\)$/m);
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
  });

  it('when --execute acts one by one, then only the hottest pod goes and it names the pod that follows', async () => {
    const captured = captureIo(
      { PROMETHEUS_URL: h.prom.url, ROTATION: 'one-by-one' },
      { kubeConfig: h.kube.kubeConfig() },
    );
    await runCommand(captured, () =>
      replayCommand([fixture('firing-single.json'), '--execute'], captured),
    );

    expect(captured.out()).toMatch(/^ {2}rotation {2}one-by-one \(configuration\)$/m);
    expect(captured.out()).toMatch(
      /1 of 2 done; api-cold follows once the replacement is Ready, removed by the running service/,
    );
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot']);
  });

  it('when --execute follows an earlier action, then the cooldown Lease stops it like a webhook retry', async () => {
    await replay([fixture('firing-single.json'), '--execute']);
    const second = await replay([fixture('firing-single.json'), '--execute', '--json']);

    expect(json(second.out).results).toEqual([
      expect.objectContaining({ outcome: 'skipped', reason: 'cooldown' }),
    ]);
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when an API v2 alert list is replayed, then active alerts are handled as firing ones', async () => {
    const list = apiV2Alerts({ 'payments/api': 'active', 'shop/web': 'unprocessed' });
    writeFileSync(join(dir, 'alerts.json'), JSON.stringify(list));

    const { code, out } = await replay([join(dir, 'alerts.json'), '--json']);

    expect(code).toBe(EXIT.done);
    expect(json(out).results).toEqual([
      expect.objectContaining({
        fingerprint: 'f00f0b57164017',
        deployment: 'api',
        outcome: 'dry-run',
      }),
      expect.objectContaining({
        fingerprint: 'f10f0b57164017',
        deployment: 'web',
        outcome: 'dry-run',
      }),
    ]);
    expect(writes(h)).toEqual([]);
  });

  it('when an API v2 alert is suppressed, then it is left out with a note unless --include-suppressed', async () => {
    const list = JSON.stringify(
      apiV2Alerts({ 'payments/api': 'active', 'shop/web': 'suppressed' }),
    );

    const left = await replay(['-', '--json'], list);
    const included = await replay(['-', '--json', '--include-suppressed'], list);

    expect(json(left.out).results).toEqual([expect.objectContaining({ deployment: 'api' })]);
    expect(left.err).toContain('alert f10f0b57164017 is suppressed (silenced or inhibited)');
    expect(json(included.out).results).toHaveLength(2);
  });

  it('when the file is "-", then the payload is read from stdin', async () => {
    const { code, out } = await replay(
      ['-', '--json'],
      readFileSync(fixture('firing-single.json'), 'utf8'),
    );

    expect(code).toBe(EXIT.done);
    expect(json(out).results).toEqual([API_REPORT]);
  });

  it("when --at alert is given, then the CPU is queried at the alert's startsAt", async () => {
    await replay([fixture('firing-single.json'), '--at', 'alert']);
    await replay([fixture('firing-single.json')]);

    const [atAlert, atNow] = h.prom.queries.map((q) => Number(q.time));
    expect(atAlert).toBeCloseTo(Date.parse('2026-11-28T16:44:56.709Z') / 1000, 3);
    expect(atNow).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('when no flag asks for JSON, then each alert is a readable block: target, decision, stats, pods', async () => {
    const { out } = await replay([fixture('firing-single.json')]);

    expect(out).toContain('observe only: decided and reported, nothing written');
    expect(out).toContain('payments/api  DeploymentCPUImbalance  fingerprint d9600f0b57164017');
    expect(out).toContain('  decision  dry-run (imbalanced)');
    expect(out).toMatch(
      / {2}stats {5}5 pods, mean 0\.730, stddev 0\.576, min 0\.050, max 1\.800 cores/,
    );
    expect(out).toContain('  pods      api-hot   highest  1.800 cores  would-evict');
    expect(out).toContain('            api-cold  lowest   0.050 cores  would-evict');
  });

  it('when Prometheus is unreachable, then the alert fails and replay exits 1', async () => {
    await h.prom.stop();

    const { code, out } = await replay([fixture('firing-single.json'), '--json']);

    expect(code).toBe(EXIT.failure);
    expect(json(out).results).toEqual([
      expect.objectContaining({ outcome: 'failed', reason: 'prometheus-unavailable' }),
    ]);
  });

  it.each([
    [['missing.json'], /cannot read missing\.json \(ENOENT\)/],
    [['-'], /-: empty input/],
    [['--bogus', 'x.json'], /unknown flag --bogus/],
    [[], /replay needs exactly one FILE/],
    [['x.json', '--at', 'yesterday'], /--at: expected now or alert/],
    [
      ['x.json', '--url', 'http://127.0.0.1:1'],
      /--url posts the alerts to a running service.*add --execute/,
    ],
    [
      ['x.json', '--execute', '--at', 'alert'],
      /--at alert only observes: --execute always verifies now/,
    ],
  ])('when the arguments are %j, then it exits 2 saying what is wrong', async (args, message) => {
    const { code, err } = await replay(args);

    expect(code).toBe(EXIT.badInput);
    expect(err).toMatch(message);
    expect(h.prom.queries).toEqual([]);
  });

  it.each([
    ['not JSON', '{"version": "4", alerts', /bad\.json: not JSON/],
    [
      'neither format',
      '{"alerts": []}',
      /neither an Alertmanager webhook payload .* nor an API v2 alert list/,
    ],
    [
      'a webhook payload breaking the schema',
      '{"version": "4", "alerts": [{"status": "burning", "labels": {}, "fingerprint": "f"}]}',
      /not a valid Alertmanager webhook payload: \/alerts\/0\/status must be equal to one of the allowed values \(firing, resolved\)/,
    ],
    [
      'an API v2 list breaking the schema',
      '[{"labels": {}, "fingerprint": "f", "startsAt": "2026-11-28T16:44:56.709Z", "status": {"state": "firing"}}]',
      /not a valid Alertmanager API v2 alert list: \/0\/status\/state must be equal to one of the allowed values \(active, suppressed, unprocessed\)/,
    ],
  ])(
    'when the file is %s, then it exits 2 naming the problem and queries nothing',
    async (_what, text, message) => {
      writeFileSync(join(dir, 'bad.json'), text);

      const { code, err } = await replay([join(dir, 'bad.json')]);

      expect(code).toBe(EXIT.badInput);
      expect(err).toMatch(message);
      expect(h.prom.queries).toEqual([]);
      expect(h.kube.requests).toEqual([]);
    },
  );
});

describe('pod-rebalancer replay --url, against a running service', () => {
  let h: Harness;
  let server: Server;
  let url: string;
  let dir: string;
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    server = h.service.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-replay-'));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const replay = async (args: string[]) => {
    // No PROMETHEUS_URL and no kubeconfig: posting needs neither.
    const captured = captureIo({});
    const code = await runCommand(captured, () => replayCommand(args, captured));
    return { code, out: captured.out(), err: captured.err() };
  };

  it('when posted with --execute and the token file, then the service acts and its report is shown', async () => {
    writeFileSync(join(dir, 'token'), `# rotated 2026-11\n${TOKEN}\n`);

    const { code, out } = await replay([
      fixture('firing-single.json'),
      '--url',
      url,
      '--execute',
      '--token-file',
      join(dir, 'token'),
    ]);

    expect(code).toBe(EXIT.done);
    expect(out).toContain(
      `posted to the running service, which acted as on any notification (${url}/webhook)`,
    );
    expect(out).toContain('  decision  rebalanced (imbalanced)');
    expect(h.kube.removals.map((r) => r.name)).toEqual(['api-hot', 'api-cold']);
  });

  it('when the service refuses the token, then replay exits 1 with its answer', async () => {
    writeFileSync(join(dir, 'token'), 'not-the-token\n');

    const { code, err } = await replay([
      fixture('firing-single.json'),
      '--url',
      url,
      '--execute',
      '--token-file',
      join(dir, 'token'),
    ]);

    expect(code).toBe(EXIT.failure);
    expect(err).toContain(`${url}/webhook answered 401: missing or invalid bearer token`);
    expect(h.kube.removals).toEqual([]);
  });

  it('when --url carries a user and password, then replay never prints them', async () => {
    writeFileSync(join(dir, 'token'), TOKEN);
    const withPassword = url.replace('http://', 'http://ops:s3cr3t-pw@');

    const { out, err } = await replay([
      fixture('firing-single.json'),
      '--url',
      withPassword,
      '--execute',
      '--token-file',
      join(dir, 'token'),
    ]);

    expect(out + err).toContain('http://***@127.0.0.1');
    expect(out + err).not.toContain('s3cr3t-pw');
  });

  it('when nothing listens at the URL, then replay exits 1 saying it cannot reach it', async () => {
    writeFileSync(join(dir, 'token'), TOKEN);
    const nobody = `http://127.0.0.1:${await freePort()}`;

    const { code, err } = await replay([
      fixture('firing-single.json'),
      '--url',
      nobody,
      '--execute',
      '--token-file',
      join(dir, 'token'),
    ]);

    expect(code).toBe(EXIT.failure);
    expect(err).toMatch(new RegExp(`cannot reach ${nobody}/webhook: .*ECONNREFUSED`));
  });
});

describe('pod-rebalancer replay, as a process', () => {
  let h: Harness;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => buildDist(), 120_000);
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-replay-'));
    writeFileSync(join(dir, 'kubeconfig'), h.kube.kubeConfigText());
    env = { PROMETHEUS_URL: h.prom.url, KUBECONFIG: join(dir, 'kubeconfig') };
  });
  afterEach(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when run without --execute, then it prints the decision and writes nothing to the cluster', async () => {
    const run = await runCli(['replay', fixture('firing-single.json')], { env });

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('  decision  dry-run (imbalanced)');
    expect(writes(h)).toEqual([]);
  });

  it('when the payload comes on stdin with --execute, then the pods are evicted', async () => {
    const run = await runCli(['replay', '-', '--execute', '--json'], {
      env,
      input: readFileSync(fixture('firing-single.json'), 'utf8'),
    });

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      mode: 'execute',
      results: [{ outcome: 'rebalanced' }],
    });
    expect(h.kube.removals).toHaveLength(2);
  });

  it('when the file is not JSON, then it exits 2 with one clear line', async () => {
    writeFileSync(join(dir, 'bad.json'), 'not json');

    const run = await runCli(['replay', join(dir, 'bad.json')], { env });

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^pod-rebalancer: .*bad\.json: not JSON \(.*\)\n$/);
  });

  it('when the configuration is invalid, then it exits 2 naming the variable', async () => {
    const run = await runCli(['replay', fixture('firing-single.json')], {
      env: { ...env, COOLDOWN: 'soon' },
    });

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('pod-rebalancer: COOLDOWN: expected a duration');
  });

  it('when asked for --help, then the exit codes are documented', async () => {
    const run = await runCli(['--help']);

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /exit codes:\n {2}0 {2}done.*\n {2}1 {2}a failure.*\n {2}2 {2}bad input/,
    );
    expect(run.stdout).toMatch(/replay .*\n.*observe only/);
  });
});

describe('pod-rebalancer replay of what amtool prints from a real Alertmanager 0.25', () => {
  let h: Harness;
  let dir: string;
  let alertmanager: Program | undefined;
  let amUrl: string;
  beforeAll(async () => {
    requireProgram('prometheus-alertmanager', 'prometheus-alertmanager');
    requireProgram('amtool', 'prometheus-alertmanager');
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-replay-am-'));
    writeFileSync(
      join(dir, 'alertmanager.yml'),
      'route: {receiver: nobody}\nreceivers: [{name: nobody}]\n',
    );
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    alertmanager = startProgram('prometheus-alertmanager', [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ]);
    await waitForReady(`${amUrl}/-/ready`, alertmanager);
    const labels = (namespace: string, deployment: string) => ({
      alertname: 'DeploymentCPUImbalance',
      namespace,
      deployment,
      severity: 'warning',
    });
    const posted = await fetch(`${amUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { labels: labels('payments', 'api'), startsAt: '2026-11-28T16:44:56.709Z' },
        { labels: labels('shop', 'web'), startsAt: '2026-11-28T16:44:59.709Z' },
      ]),
    });
    expect(posted.status).toBe(200);
    const silence = spawnSync(
      'amtool',
      [
        `--alertmanager.url=${amUrl}`,
        'silence',
        'add',
        'deployment=web',
        '--comment=maintenance',
        '--author=test',
        '--duration=1h',
      ],
      { encoding: 'utf8', timeout: 10_000 },
    );
    expect(silence.status).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await alertmanager?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'shop', 'web');
  });
  afterEach(() => h.stop());

  /** `amtool alert query -o json`, active and silenced alerts both; retried until the silence applies. */
  async function amtoolAlerts(): Promise<string> {
    let output = '';
    await waitFor(
      'Alertmanager to mark the silenced alert suppressed',
      () => {
        const query = spawnSync(
          'amtool',
          [`--alertmanager.url=${amUrl}`, 'alert', 'query', '--active', '--silenced', '-o', 'json'],
          { encoding: 'utf8', timeout: 10_000 },
        );
        output = query.stdout;
        return query.status === 0 && output.includes('"suppressed"');
      },
      10_000,
    );
    return output;
  }

  it('when piped in, then the active alert is decided and the silenced one is left out', async () => {
    const captured = captureIo(
      { PROMETHEUS_URL: h.prom.url },
      { kubeConfig: h.kube.kubeConfig(), stdin: await amtoolAlerts() },
    );

    const code = await runCommand(captured, () => replayCommand(['-', '--json'], captured));

    expect(code).toBe(EXIT.done);
    expect(JSON.parse(captured.out()).results).toEqual([
      expect.objectContaining({
        fingerprint: 'd9600f0b57164017',
        deployment: 'api',
        outcome: 'dry-run',
      }),
    ]);
    expect(captured.err()).toContain('is suppressed (silenced or inhibited)');
    expect(writes(h)).toEqual([]);
  });
});
