import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { checkCommand } from '../../src/operator/check.js';
import { EXIT, runCommand } from '../../src/operator/command.js';
import { replayCommand } from '../../src/operator/replay.js';
import { seedImbalanced, startHarness, TOKEN, type Harness } from '../support/harness.js';
import { payload } from '../http/payload.js';
import { captureIo } from './cli.js';

const CRITICAL = 'ALERTS{alertstate="firing", severity="critical"}';
const BROKER_DOWN = {
  labels: { __name__: 'ALERTS', alertname: 'KafkaBrokerDown', severity: 'critical' },
  value: 1,
};
const LAG_GUARD = 'sum(kafka_consumergroup_lag_sum{consumergroup="api"}) > 1000';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
  seedImbalanced(h, 'payments', 'api');
});
afterEach(() => h.stop());

const run = async (
  command: typeof checkCommand,
  args: string[],
  env: Record<string, string>,
  stdin?: string,
) => {
  const io = captureIo(
    { PROMETHEUS_URL: h.prom.url, WEBHOOK_TOKEN: TOKEN, ...env },
    { kubeConfig: h.kube.kubeConfig(), stdin },
  );
  const code = await runCommand(io, () => command(args, io));
  return { code, out: io.out(), lines: io.out().split('\n') };
};
const guardLine = (lines: string[]) => lines.filter((l) => l.includes('guard GUARD_QUERY'));

describe('pod-rebalancer check evaluates GUARD_QUERY once and says whether it holds now', () => {
  it('when it returns series, then an ok line says it holds now and how many series, never which', async () => {
    h.prom.series.set(CRITICAL, [BROKER_DOWN]);

    const { lines } = await run(checkCommand, [], { GUARD_QUERY: CRITICAL });

    expect(guardLine(lines)).toEqual([
      'ok    guard GUARD_QUERY: holds now (guard returned 1 series): no Deployment is acted on while it does',
    ]);
    expect(h.prom.queries.filter((q) => q.query === `count(${CRITICAL})`)).toHaveLength(1);
  });

  it('when it returns nothing, then an ok line says it does not hold', async () => {
    const { lines } = await run(checkCommand, [], { GUARD_QUERY: CRITICAL });

    expect(guardLine(lines)).toEqual([
      'ok    guard GUARD_QUERY: does not hold now (no series): actions are not held back',
    ]);
  });

  it('when Prometheus refuses it, then a FAIL line with the parse error, and check exits 1', async () => {
    const { code, lines } = await run(checkCommand, [], {
      GUARD_QUERY: 'ALERTS{severity="critical"',
    });

    expect(code).toBe(EXIT.failure);
    expect(guardLine(lines)).toEqual([
      expect.stringMatching(
        /^FAIL {2}guard GUARD_QUERY: rejected by Prometheus: 1:\d+: parse error: .* -> fix the PromQL in GUARD_QUERY/,
      ),
    ]);
  });

  it('when GUARD_QUERY is not set, then there is no guard line', async () => {
    const { lines } = await run(checkCommand, [], {});

    expect(guardLine(lines)).toEqual([]);
  });
});

describe('pod-rebalancer replay applies the guards, and says so', () => {
  const body = (annotations: Record<string, string> = {}) =>
    JSON.stringify(payload([{ annotations }]));

  it('when GUARD_QUERY holds, then the alert is decided guarded, the output says guards apply, and nothing is written', async () => {
    h.prom.series.set(CRITICAL, [BROKER_DOWN]);

    const { code, out } = await run(replayCommand, ['-'], { GUARD_QUERY: CRITICAL }, body());

    expect(code).toBe(EXIT.done);
    expect(out).toContain(
      `guards: applied (GUARD_QUERY ${CRITICAL}; 0 of 1 alert carry pod_rebalancer_guard)`,
    );
    expect(out).toContain('decision  skipped (guarded)');
    expect(out).toContain('GUARD_QUERY holds: guard returned 1 series');
    expect(out).not.toContain('KafkaBrokerDown');
    expect(h.kube.events).toEqual([]);
    expect(h.kube.leases.size).toBe(0);
  });

  it("when the alert's own guard holds, then it is guarded; without the annotation the same alert would act", async () => {
    h.prom.series.set(LAG_GUARD, [{ labels: { consumergroup: 'api' }, value: 5000 }]);

    const guarded = await run(
      replayCommand,
      ['-', '--json'],
      {},
      body({ pod_rebalancer_guard: LAG_GUARD }),
    );
    const unguarded = await run(replayCommand, ['-', '--json'], {}, body());

    expect(JSON.parse(guarded.out)).toMatchObject({
      guards: expect.stringContaining('1 of 1 alert carry pod_rebalancer_guard'),
      results: [{ outcome: 'skipped', reason: 'guarded' }],
    });
    expect(JSON.parse(unguarded.out)).toMatchObject({ results: [{ outcome: 'dry-run' }] });
  });

  it("when the input is an API v2 alert list, then the alerts' annotations travel, and their guard applies", async () => {
    h.prom.series.set(LAG_GUARD, [{ labels: { consumergroup: 'api' }, value: 5000 }]);
    const alerts = [
      {
        annotations: { summary: 'CPU imbalance in payments/api', pod_rebalancer_guard: LAG_GUARD },
        startsAt: '2026-11-28T16:44:56.709Z',
        fingerprint: 'a1b2c3',
        status: { state: 'active' },
        labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' },
      },
    ];

    const { out } = await run(replayCommand, ['-', '--json'], {}, JSON.stringify(alerts));

    expect(JSON.parse(out)).toMatchObject({ results: [{ reason: 'guarded' }] });
  });
});
