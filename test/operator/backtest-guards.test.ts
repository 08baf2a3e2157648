import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  backtestCommand,
  backtestRequest,
  prometheusHistory,
  runBacktest,
} from '../../src/operator/backtest.js';
import { EXIT, loadOperatorConfig, runCommand } from '../../src/operator/command.js';
import { renderReport } from '../../src/operator/report-html.js';
import { freePort } from '../support/processes.js';
import { captureIo } from './cli.js';
import { MINUTE, startHistoryPrometheus, type HistoryPrometheus } from './history-fixture.js';
import { dayPlan, EPISODES } from './plan.js';

const RULES = new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url).pathname;

/**
 * The guards in the backtest, over a real Prometheus holding a known day of history (the same
 * fixture as backtest-prometheus.test.ts). A guard that holds only in a time window is plain
 * PromQL: `vector(time()) > T1 < T2` returns a series exactly while T1 < time() < T2.
 */
describe('pod-rebalancer backtest evaluates the guards over the same history', () => {
  const plan = dayPlan();
  const at = (minute: number) => plan.startMs + minute * MINUTE;
  const range = ['--from', new Date(at(0)).toISOString(), '--to', new Date(at(1440)).toISOString()];
  // Covers the first notification of the strong episode (it fires about 10 minutes in), not later ones.
  const window = { from: at(EPISODES.strong.from + 5), to: at(EPISODES.strong.from + 25) };
  const inWindow = (t: number) => t > window.from && t < window.to;
  const timeGuard = `vector(time()) > ${window.from / 1000} < ${window.to / 1000}`;
  let dir: string;
  let prometheus: HistoryPrometheus | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-backtest-guards-'));
    prometheus = await startHistoryPrometheus(plan, dir, await freePort());
  }, 120_000);

  afterAll(async () => {
    await prometheus?.program.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const backtest = async (env: Record<string, string>, args: string[]) => {
    const config = loadOperatorConfig({ PROMETHEUS_URL: prometheus!.url, ...env });
    const request = backtestRequest(
      ['--namespace', 'shop', '--deployment', 'web', '--thresholds', '0.3', ...range, ...args],
      config,
      new Date(),
    );
    const result = await runBacktest(request, prometheusHistory(config), captureIo({}));
    lastResult = result;
    return result.deployments[0]!;
  };
  let lastResult: Awaited<ReturnType<typeof runBacktest>> | undefined;

  it('when GUARD_QUERY holds during the first action, then the guarded run holds it back and the unguarded run still shows it', async () => {
    const web = await backtest({ GUARD_QUERY: timeGuard }, []);
    const unguarded = web.results[0]!;
    const guarded = web.guarded![0]!;

    const heldAt = guarded.heldBack!.map((h) => h.at);
    expect(heldAt.length).toBeGreaterThan(0);
    expect(heldAt.every(inWindow)).toBe(true);
    expect(unguarded.actions.some((a) => inWindow(a.at))).toBe(true);
    expect(guarded.actions.some((a) => inWindow(a.at))).toBe(false);
    expect(guarded.heldBack![0]!.detail).toMatch(/^GUARD_QUERY holds: \{\} \d/);
    expect(guarded.heldBack![0]!.pods.map((p) => p.role)).toEqual(['highest', 'lowest']);
    expect(guarded.skipped.guarded).toBe(heldAt.length);
    // Before the guard, both runs are the same.
    const before = (actions: { at: number }[]) => actions.filter((a) => a.at <= window.from);
    expect(before(guarded.actions)).toEqual(before(unguarded.actions));
  });

  it("when the rule's guard is templated with the Deployment, then it is rendered per Deployment and held back by its own series", async () => {
    const rules = readFileSync(RULES, 'utf8').replace(
      '        annotations:\n',
      `        annotations:\n          pod_rebalancer_guard: 'kube_replicaset_owner{namespace="{{ $labels.namespace }}", owner_name="{{ $labels.deployment }}"} and on () (${timeGuard})'\n`,
    );
    const file = join(dir, 'guarded.rules.yml');
    writeFileSync(file, rules);

    const web = await backtest({}, ['--rules', file]);
    const [held] = web.guarded![0]!.heldBack!;

    expect(held).toBeDefined();
    expect(inWindow(held!.at)).toBe(true);
    expect(held!.detail).toContain("the rule's pod_rebalancer_guard holds: kube_replicaset_owner{");
    expect(held!.detail).toContain('owner_name="web"');
  });

  /** An override rule (rules/examples/overrides.rules.yml style) for one Deployment of shop. */
  const overrideFor = (deployment: string, guard?: string) => {
    const selector = `namespace_deployment_pod:cpu_usage:rate{namespace="shop", deployment="${deployment}"}`;
    return `groups:
  - name: override-shop-${deployment}
    rules:
      - record: pod_rebalancer:deployment_override
        expr: vector(1)
        labels:
          namespace: shop
          deployment: ${deployment}
      - alert: DeploymentCPUImbalance
        expr: |
          stddev by (namespace, deployment) (${selector}) > 0.3
          and on (namespace, deployment)
            count by (namespace, deployment) (${selector}) >= 3
          and on (namespace, deployment)
            avg by (namespace, deployment) (${selector}) > 0.05
        for: 10m
        labels:
          pod_rebalancer_rule: shop-${deployment}
        annotations:
          pod_rebalancer_threshold: "0.3"
          pod_rebalancer_measure: stddev
          pod_rebalancer_min_pods: "3"
${guard === undefined ? '' : `          pod_rebalancer_guard: '${guard}'\n`}`;
  };
  const writeRules = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const webGuard = `kube_replicaset_owner{owner_name="{{ $labels.deployment }}"} and on () (${timeGuard})`;

  it("when --rules lists two files and the Deployment's override in the second carries the guard, then the guard holds back its actions", async () => {
    const override = writeRules('web-guarded.rules.yml', overrideFor('web', webGuard));

    const web = await backtest({}, ['--rules', `${RULES},${override}`]);

    expect(web.rule.name).toBe('shop-web');
    const held = web.guarded?.[0]?.heldBack ?? [];
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((h) => inWindow(h.at))).toBe(true);
    expect(held[0]!.detail).toContain('owner_name="web"');
  });

  it('when --rules lists two files and the guard is on the default rule, then a Deployment without an override of its own is still guarded by it', async () => {
    const main = readFileSync(RULES, 'utf8').replace(
      '        annotations:\n',
      `        annotations:\n          pod_rebalancer_guard: '${webGuard}'\n`,
    );
    const files = [
      writeRules('default-guarded.rules.yml', main),
      writeRules('worker.rules.yml', overrideFor('worker')),
    ];

    const web = await backtest({}, ['--rules', files.join(',')]);

    expect(web.rule.name).toBe('default');
    expect(web.guarded?.[0]?.heldBack?.length).toBeGreaterThan(0);
  });

  it("when the default rule carries a guard but the Deployment's own override does not, then no rule guard applies to it", async () => {
    const main = readFileSync(RULES, 'utf8').replace(
      '        annotations:\n',
      `        annotations:\n          pod_rebalancer_guard: '${webGuard}'\n`,
    );
    const file = writeRules(
      'default-guarded-web-own.rules.yml',
      `${main}\n${overrideFor('web').replace('groups:\n', '')}`,
    );

    const web = await backtest({}, ['--rules', file]);

    expect(web.rule.name).toBe('shop-web');
    expect(web.guarded).toBeUndefined();
  });

  it('without guards, then there is no guarded run', async () => {
    const web = await backtest({}, []);

    expect(web.guarded).toBeUndefined();
    expect(renderReport(lastResult!)).not.toContain('With the guards');
  });

  it('the HTML report has a table of the actions with and without the guards and what they held back', async () => {
    await backtest({ GUARD_QUERY: timeGuard }, []);

    const html = renderReport(lastResult!);

    expect(html).toContain('<h3>With the guards</h3>');
    expect(html).toMatch(
      /<td>0\.3 cores<\/td><td>\d+<\/td><td>\d+<\/td><td>[1-9]\d*<\/td><td>\S+Z by GUARD_QUERY holds: /,
    );
  });

  it('prints the guards and, per threshold, the actions with and without them and those held back', async () => {
    const io = captureIo({ PROMETHEUS_URL: prometheus!.url, GUARD_QUERY: timeGuard });
    const args = ['--namespace', 'shop', '--deployment', 'web', '--thresholds', '0.3', ...range];

    const code = await runCommand(io, () => backtestCommand(args, io));

    expect(code).toBe(EXIT.done);
    expect(io.out()).toContain(`guards:  GUARD_QUERY ${timeGuard}`);
    expect(io.out()).toMatch(
      /with the guards:\n {4}0\.3 cores: \d+ actions without guards, \d+ with them; [1-9]\d* held back/,
    );
    expect(io.out()).toMatch(
      / {6}\S+Z {2}held back: web-\S+ \(highest\) {2}web-\S+ \(lowest\) {2}by GUARD_QUERY holds: /,
    );
  });
});
