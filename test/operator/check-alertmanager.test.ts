import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { receiversFor } from '../../src/operator/alertmanager-routing.js';
import { checkCommand } from '../../src/operator/check.js';
import { runCommand } from '../../src/operator/command.js';
import {
  freePort,
  requireProgram,
  startProgram,
  waitFor,
  waitForReady,
  type Program,
} from '../support/processes.js';
import { repoRoot } from '../rules/tools.js';
import { captureIo } from './cli.js';

const SHIPPED = 'deploy/alertmanager/alertmanager.yml';
const ALERT = { alertname: 'DeploymentCPUImbalance', namespace: 'shop', deployment: 'web' };

/** The shipped plain config with its token file where this test keeps one. */
const shipped = (tokenFile: string) =>
  readFileSync(join(repoRoot, SHIPPED), 'utf8').replace(
    /credentials_file: .*/,
    `credentials_file: ${tokenFile}`,
  );

describe('pod-rebalancer check --alertmanager, against a real Alertmanager 0.25', () => {
  let dir: string;
  let url: string;
  let alertmanager: Program;
  const configFile = () => join(dir, 'alertmanager.yml');

  /** Gives the running Alertmanager a new configuration and waits until it serves it. */
  async function load(config: string): Promise<void> {
    writeFileSync(configFile(), config);
    const reload = await fetch(`${url}/-/reload`, { method: 'POST' });
    expect(reload.status).toBe(200);
    await waitFor(
      'Alertmanager to serve the new configuration',
      async () => {
        const status = (await (await fetch(`${url}/api/v2/status`)).json()) as {
          config: { original: string };
        };
        return status.config.original.includes(
          config.includes('team-oncall') ? 'team-oncall' : 'pod-rebalancer',
        );
      },
      20_000,
    );
  }

  async function check(args: string[] = []) {
    const io = captureIo({});
    const code = await runCommand(io, () => checkCommand(['--alertmanager', url, ...args], io));
    return { code, out: io.out() };
  }

  beforeAll(async () => {
    requireProgram('prometheus-alertmanager', 'prometheus-alertmanager');
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-am-'));
    writeFileSync(join(dir, 'token'), 'a-token');
    writeFileSync(configFile(), shipped(join(dir, 'token')));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    alertmanager = startProgram('prometheus-alertmanager', [
      `--config.file=${configFile()}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ]);
    await waitForReady(`${url}/-/ready`, alertmanager);
  }, 60_000);

  afterAll(async () => {
    await alertmanager?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("when the shipped route is loaded, then the rule's alert reaches the webhook receiver: ok, exit 0", async () => {
    await load(shipped(join(dir, 'token')));

    const { code, out } = await check();

    expect(out).toContain(
      'ok    alertmanager routes DeploymentCPUImbalance: {alertname="DeploymentCPUImbalance", severity="warning", namespace="default", deployment="example"} goes to "pod-rebalancer", whose webhook is pod-rebalancer\'s',
    );
    expect(code).toBe(0);
  });

  it('when a catch-all route comes before ours, then it fails naming the receiver that gets the alert and how to fix the order', async () => {
    await load(
      shipped(join(dir, 'token'))
        .replace(
          'routes:\n',
          'routes:\n    - receiver: team-oncall\n      matchers: [\'severity=~".+"\']\n',
        )
        .replace('receivers:\n', 'receivers:\n  - name: team-oncall\n'),
    );

    const { code, out } = await check();

    expect(out).toContain(
      'FAIL  alertmanager routes DeploymentCPUImbalance: {alertname="DeploymentCPUImbalance", severity="warning", namespace="default", deployment="example"} goes to "team-oncall", not to pod-rebalancer\'s webhook -> put pod-rebalancer\'s route first among route.routes, before any catch-all, with continue: false',
    );
    expect(code).toBe(1);
  });

  it('when prometheus-operator scoped the route to its own namespace, then an alert from another namespace fails, and one from that namespace passes', async () => {
    await load(
      shipped(join(dir, 'token')).replace(
        '        - alertname="DeploymentCPUImbalance"',
        '        - alertname="DeploymentCPUImbalance"\n        - namespace="monitoring"',
      ),
    );

    expect((await check(['--namespace', 'shop'])).code).toBe(1);
    expect((await check(['--namespace', 'monitoring'])).code).toBe(0);
  });

  it('when nothing answers at the URL, then it fails saying how to reach Alertmanager', async () => {
    const io = captureIo({});
    const closed = `http://127.0.0.1:${await freePort()}`;

    const code = await runCommand(io, () => checkCommand(['--alertmanager', closed], io));

    expect(io.out()).toMatch(
      /^FAIL {2}alertmanager: cannot read its configuration: .*-> check the URL/m,
    );
    expect(code).toBe(1);
  });
});

describe('receiversFor, the routing tree walked as Alertmanager walks it', () => {
  const tree = {
    receiver: 'root',
    routes: [
      { receiver: 'watchdog', matchers: ['alertname = "Watchdog"'] },
      { receiver: 'copy', match_re: { severity: 'warning|info' }, continue: true },
      {
        matchers: ['team="payments"'],
        routes: [{ receiver: 'payments-critical', match: { severity: 'critical' } }],
      },
      { receiver: 'not-shop', matchers: ['namespace!="shop"'] },
    ],
  };

  it.each([
    [{ alertname: 'Watchdog' }, ['watchdog']],
    // A child matched (with continue: true): the parent does not take the alert itself.
    [{ alertname: 'X', severity: 'warning', namespace: 'shop' }, ['copy']],
    [{ alertname: 'X', severity: 'warning', namespace: 'db' }, ['copy', 'not-shop']],
    [{ alertname: 'X', team: 'payments', severity: 'critical' }, ['payments-critical']],
    // A route without a receiver passes its parent's on.
    [{ alertname: 'X', team: 'payments', namespace: 'shop' }, ['root']],
    // Regexes are anchored: "warn" is not "warning".
    [{ alertname: 'X', severity: 'warn', namespace: 'shop' }, ['root']],
  ])('when an alert has labels %j, then it goes to %j', (labels, expected) => {
    expect(receiversFor(tree, labels)).toEqual(expected);
  });

  it("agrees with the shipped configuration for the service's alert", () => {
    expect(
      receiversFor(
        {
          receiver: 'default',
          routes: [
            { receiver: 'pod-rebalancer', matchers: ['alertname="DeploymentCPUImbalance"'] },
          ],
        },
        ALERT,
      ),
    ).toEqual(['pod-rebalancer']);
  });
});
