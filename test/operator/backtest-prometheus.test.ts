import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadYaml } from '@kubernetes/client-node';
import { decide } from '../../src/core/decide.js';
import { loadOperatorConfig, EXIT, runCommand } from '../../src/operator/command.js';
import {
  backtestCommand,
  backtestRequest,
  prometheusHistory,
  runBacktest,
  type BacktestResult,
  type DeploymentResult,
} from '../../src/operator/backtest.js';
import { formatBacktest } from '../../src/operator/backtest-format.js';
import { perPodCpuExpression, PrometheusHistory } from '../../src/operator/history.js';
import { STDDEV_COLOR, thresholdColor } from '../../src/operator/report-html.js';
import { freePort, requireProgram } from '../support/processes.js';
import { captureIo } from './cli.js';
import { MINUTE, startHistoryPrometheus, type HistoryPrometheus } from './history-fixture.js';
import { dayPlan, EPISODES, plannedAt, REPLACED_AT } from './plan.js';
import { countColour, readPng } from './png.js';

const RULES = new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url).pathname;
const FOR_MS = 10 * MINUTE;
/** The 5m rate window and the 1m steps blur an episode's edges by up to this much. */
const EDGE_MS = 7 * MINUTE;

describe('pod-rebalancer backtest against a real Prometheus holding a known day of history', () => {
  const plan = dayPlan();
  const at = (minute: number) => plan.startMs + minute * MINUTE;
  const range = ['--from', new Date(at(0)).toISOString(), '--to', new Date(at(1440)).toISOString()];
  let dir: string;
  let prometheus: HistoryPrometheus | undefined;
  let env: Record<string, string>;
  let result: BacktestResult;

  const deployment = (name: string): DeploymentResult =>
    result.deployments.find((d) => d.deployment === name)!;
  const resultAt = (name: string, threshold: number, measure = 'stddev') =>
    deployment(name).results.find((r) => r.threshold === threshold && r.measure === measure)!;
  /** The stddev (cores) results: the planned day is described in cores. */
  const inCores = (d: DeploymentResult) => d.results.filter((r) => r.measure === 'stddev');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-backtest-'));
    prometheus = await startHistoryPrometheus(plan, dir, await freePort());
    env = { PROMETHEUS_URL: prometheus.url };
    const config = loadOperatorConfig(env);
    const request = backtestRequest(['--namespace', 'shop', ...range], config, new Date());
    result = await runBacktest(request, prometheusHistory(config), captureIo(env));
  }, 120_000);

  afterAll(async () => {
    await prometheus?.program.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], options: { tty?: boolean } = {}) => {
    const io = captureIo(env, options);
    const code = await runCommand(io, () => backtestCommand(args, io));
    return { code, out: io.out(), err: io.err() };
  };

  it('when no --deployment is given, then it backtests every Deployment kube_replicaset_owner names in the namespace', () => {
    expect(result.deployments.map((d) => `${d.namespace}/${d.deployment}`)).toEqual([
      'shop/web',
      'shop/worker',
    ]);
    expect(result.request.thresholds).toEqual([0.2, 0.3, 0.4]);
  });

  it('finds exactly the planned episodes at each threshold: the moderate one only below 0.4, the 4-minute spike never', () => {
    const expected = {
      0.2: [EPISODES.strong, EPISODES.moderate, EPISODES.young],
      0.3: [EPISODES.strong, EPISODES.moderate, EPISODES.young],
      0.4: [EPISODES.strong, EPISODES.young],
    };
    for (const [threshold, episodes] of Object.entries(expected)) {
      const found = resultAt('web', Number(threshold)).episodes;
      expect(found).toHaveLength(episodes.length);
      found.forEach((episode, i) => {
        const planned = episodes[i]!;
        expect(episode.firingAt).toBeGreaterThanOrEqual(at(planned.from) + FOR_MS);
        expect(episode.firingAt).toBeLessThanOrEqual(at(planned.from) + FOR_MS + EDGE_MS);
        expect(episode.resolvedAt).toBeGreaterThanOrEqual(at(planned.to));
        expect(episode.resolvedAt).toBeLessThanOrEqual(at(planned.to) + EDGE_MS);
      });
    }
  });

  it('sees the spike cross every threshold for less than for: 10m, and does not call it an episode', () => {
    const web = deployment('web');
    const { startMs, stepMs } = web.history.timeline;
    const spike = Array.from(web.stats.stddev).filter((_, i) => {
      const t = startMs + i * stepMs;
      return t >= at(EPISODES.spike.from) && t < at(EPISODES.spike.to) + EDGE_MS;
    });
    const above = spike.filter((v) => v > 0.4).length;

    expect(above).toBeGreaterThan(0);
    expect(above * stepMs).toBeLessThan(FOR_MS);
  });

  it('leaves the pause container out, as the rule does: outside the episodes the stddev stays low', () => {
    const web = deployment('web');
    const { startMs, stepMs } = web.history.timeline;
    const planned = [EPISODES.strong, EPISODES.spike, EPISODES.moderate, EPISODES.young];
    const quiet = Array.from(web.stats.stddev).filter((v, i) => {
      const t = startMs + i * stepMs;
      return Number.isFinite(v) && !planned.some((e) => t >= at(e.from) && t < at(e.to) + EDGE_MS);
    });

    expect(quiet.length).toBeGreaterThan(1000);
    expect(Math.max(...quiet)).toBeLessThan(0.05);
  });

  /** What decide() picks from the planned facts at a time, for one threshold. */
  function plannedDecision(name: string, threshold: number, atMs: number) {
    const facts = plannedAt(plan, name, atMs);
    const pods = facts.map((p) => ({
      name: p.name,
      uid: p.name,
      phase: 'Running',
      ready: true,
      terminating: false,
      // What history can know: rate() has a first value one scrape (a minute) after the pod's
      // first sample, and the backtest takes that as the pod's start (README).
      startedAt: new Date(p.startedAt.getTime() + MINUTE),
    }));
    const samples = new Map(facts.map((p) => [p.name, p.cpu]));
    return decide(
      pods,
      samples,
      { threshold, minPods: 3, minPodAgeMs: 10 * MINUTE },
      new Date(atMs),
    );
  }

  it('predicts at every action the pods the decision core picks from the planned facts', () => {
    const actions = result.deployments.flatMap((d) =>
      inCores(d).flatMap((r) => r.actions.map((action) => ({ d, r, action }))),
    );

    for (const { d, r, action } of actions) {
      const expected = plannedDecision(d.deployment, r.threshold, action.at);
      const chosen = expected.act ? expected.pods : [];
      expect(action.pods.map((p) => [p.name, p.role])).toEqual(chosen.map((p) => [p.name, p.role]));
      action.pods.forEach((p, i) => expect(p.cpu).toBeCloseTo(chosen[i]!.cpu, 3));
    }
    expect(actions).toHaveLength(27);
  });

  it('spares a pod younger than MIN_POD_AGE: the new cold pod is chosen only once it is old enough', () => {
    const young = resultAt('web', 0.3).actions.filter((a) => a.at >= at(EPISODES.young.from));

    expect(young.map((a) => a.pods.map((p) => p.name))).toEqual([
      ['web-a', 'web-d'],
      ['web-a', 'web-f'],
    ]);
    expect(young[0]!.at - at(REPLACED_AT)).toBeLessThan(10 * MINUTE);
    expect(young[0]!.stats.count).toBe(4);
  });

  it('doubles the cooldown after each ineffective action and stops after INEFFECTIVE_LIMIT, as the service does', () => {
    const worker = resultAt('worker', 0.3);

    expect(worker.actions.map((a) => a.cooldownMs / MINUTE)).toEqual([15, 30, 60]);
    expect(worker.skipped).toEqual({ cooldown: 3, ineffective: 6 });
    expect(worker.notifications).toBe(12);
  });

  it("computes per-pod CPU exactly as the rule's recording rules do, from the raw series", async () => {
    const rules = loadYaml<{ groups: { rules: { record?: string; expr: string }[] }[] }>(
      readFileSync(RULES, 'utf8'),
    );
    const recorded = Object.fromEntries(
      rules.groups.flatMap((g) => g.rules).map((r) => [r.record, r.expr]),
    );
    const inlined = recorded['namespace_deployment_pod:cpu_usage:rate']!.replace(
      'namespace_deployment_pod:kube_pod_owner:relabel',
      `(${recorded['namespace_deployment_pod:kube_pod_owner:relabel']})`,
    );
    const query = async (expr: string) => {
      const url = `${prometheus!.url}/api/v1/query_range?${new URLSearchParams({
        query: expr,
        start: String(at(0) / 1000),
        end: String(at(1440) / 1000),
        step: '60',
      })}`;
      const body = (await (await fetch(url)).json()) as {
        data: { result: { metric: Record<string, string>; values: [number, string][] }[] };
      };
      return Object.fromEntries(
        body.data.result
          .filter((s) => s.metric.deployment === 'web')
          .map((s) => [s.metric.pod, s.values]),
      );
    };

    const fromRule = await query(inlined);
    const ours = await query(
      perPodCpuExpression({ namespace: 'shop', deployment: 'web' }, 5 * MINUTE),
    );

    expect(Object.keys(fromRule).sort()).toEqual([
      'web-a',
      'web-b',
      'web-c',
      'web-d',
      'web-e',
      'web-f',
    ]);
    expect(ours).toEqual(fromRule);
  });

  it('splits a range into queries Prometheus accepts: 5s steps over a day find the same episodes', async () => {
    const config = loadOperatorConfig(env);
    const request = backtestRequest(
      ['--namespace', 'shop', '--deployment', 'worker', '--step', '5s', ...range],
      config,
      new Date(),
    );
    // 17,400 points per series: one query would be refused (over 11,000).
    const fine = await runBacktest(
      request,
      new PrometheusHistory({ url: prometheus!.url, timeoutMs: 60_000 }),
      captureIo(env),
    );

    const episodes = (d: DeploymentResult) =>
      d.results.map((r) => r.episodes.map((e) => e.firingAt));
    const coarse = episodes(deployment('worker'));
    episodes(fine.deployments[0]!).forEach((firing, i) =>
      firing.forEach((t, j) => expect(Math.abs(t - coarse[i]![j]!)).toBeLessThanOrEqual(MINUTE)),
    );
    expect(fine.deployments[0]!.history.timeline.length).toBeGreaterThan(11_000);
  });

  it('prints the thresholds side by side with the predicted actions, and says history is not counterfactual', async () => {
    const { code, out } = await run(['--namespace', 'shop', '--deployment', 'web', ...range]);

    expect(code).toBe(EXIT.done);
    expect(out).toMatch(
      /^ {2}threshold +fired {2}above {2}firing {2}notified {2}actions {2}pods {2}skipped$/m,
    );
    // The rule's own threshold is marked; the relative measure is side by side.
    expect(out).toMatch(
      /^ {2}rule default: 0\.3 cores, at least 3 pods, rotation together \(configuration\)/m,
    );
    expect(out).toMatch(/^ {2}0\.3 cores \* +3 {2}\S+ +\S+ +\d+ +7 +14 {2}cooldown 3$/m);
    expect(out).toMatch(/^ {2}0\.4 cores +2 /m);
    expect(out).toMatch(/^ {2}0\.5 relative +\d+ /m);
    expect(out).toMatch(/web-a \(highest, 1\.600\) {2}web-f \(lowest, 0\.050\) {2}cooldown/);
    // One hot pod among even ones: a spread two restarts fix, so the gate removed nothing.
    expect(out).toMatch(/^ {2}improvement gate \(at least 10% predicted\): removed no action$/m);
    expect(out).toMatch(/MIN_IMPROVEMENT 10%/);
    const prose = out.replace(/\s+/g, ' ');
    expect(prose).toContain('History is not counterfactual: the series show what really happened.');
    expect(prose).toContain('a pod counts as Ready while it has samples');
  });

  it('when --json is given, then every threshold, episode and action is in the output for scripts', async () => {
    const { out } = await run(['--namespace', 'shop', ...range, '--json', '--thresholds', '0.3']);
    const parsed = JSON.parse(out);

    expect(parsed.notes[0]).toContain('not counterfactual');
    expect(parsed.deployments.map((d: { deployment: string }) => d.deployment)).toEqual([
      'web',
      'worker',
    ]);
    expect(parsed.deployments[1].thresholds[0]).toMatchObject({
      threshold: 0.3,
      fired: 1,
      notifications: 12,
      skipped: { cooldown: 3, ineffective: 6 },
    });
    expect(parsed.deployments[1].thresholds[0].actions[0].pods).toEqual([
      { name: 'worker-1', cpu: expect.closeTo(1.5, 3), role: 'highest' },
      { name: 'worker-4', cpu: expect.closeTo(0.02, 3), role: 'lowest' },
    ]);
  });

  it('puts the relative measure side by side: each relative threshold holds exactly where stddev ÷ mean is above it', () => {
    const d = deployment('web');
    for (const threshold of result.request.relativeThresholds) {
      const r = resultAt('web', threshold, 'relative_stddev');
      let above = 0;
      for (let i = 0; i < d.history.timeline.length; i++) {
        const t = d.history.timeline.startMs + i * d.history.timeline.stepMs;
        const { count, mean, stddev } = {
          count: d.stats.count[i]!,
          mean: d.stats.mean[i]!,
          stddev: d.stats.stddev[i]!,
        };
        if (t >= at(0) && count >= 3 && mean > 0.05 && stddev / mean > threshold) above += MINUTE;
      }
      expect(r.aboveMs).toBe(above);
    }
    expect(result.request.relativeThresholds).toEqual([0.33, 0.5, 0.67]);
  });

  it('when an override rule file tunes one Deployment, then that Deployment is backtested around its own threshold and the other keeps the default', async () => {
    const override = join(dir, 'overrides.rules.yml');
    writeFileSync(
      override,
      readFileSync(new URL('../../rules/examples/overrides.rules.yml', import.meta.url), 'utf8')
        .replaceAll(
          'namespace="checkout", deployment="order-consumer"',
          'namespace="shop", deployment="web"',
        )
        .replace(
          'namespace: checkout\n          deployment: order-consumer',
          'namespace: shop\n          deployment: web',
        )
        .replaceAll('> 0.8', '> 0.45')
        .replace(
          'pod_rebalancer_threshold: "0.8"',
          'pod_rebalancer_threshold: "0.45"\n          pod_rebalancer_rotation: one-by-one',
        ),
    );
    const config = loadOperatorConfig(env);
    const request = backtestRequest(
      ['--namespace', 'shop', ...range, '--rules', `${RULES},${override}`],
      config,
      new Date(),
    );

    const tuned = await runBacktest(request, prometheusHistory(config), captureIo(env));

    const [web, worker] = tuned.deployments;
    expect(web!.rule).toMatchObject({ name: 'checkout-order-consumer', threshold: 0.45 });
    expect(web!.results.filter((r) => r.measure === 'stddev').map((r) => r.threshold)).toEqual([
      0.3, 0.45, 0.6,
    ]);
    expect(worker!.rule).toMatchObject({ name: 'default', threshold: 0.3 });
    expect(worker!.results.filter((r) => r.measure === 'stddev').map((r) => r.threshold)).toEqual([
      0.2, 0.3, 0.4,
    ]);
    // Each rule says how its actions go: the override one by one, the default as ROTATION says.
    const text = formatBacktest(tuned);
    expect(text).toMatch(
      /^ {2}rule checkout-order-consumer: .*rotation one-by-one \(alert annotation\)/m,
    );
    expect(text).toMatch(/^ {2}rule default: .*rotation together \(configuration\)/m);
  }, 60_000);

  it('when stderr is a terminal, then a progress bar counts the range queries', async () => {
    const { err } = await run(['--namespace', 'shop', ...range], { tty: true });

    // Two Deployments, each a day and ten minutes of warm-up: two chunks of at most a day.
    expect(err).toContain('[###############...............] 2/4 queries  shop/web');
    expect(err).toContain('4/4 queries  shop/worker');
  });

  it('writes a self-contained HTML report: a chart per Deployment with stddev, threshold lines and the predicted actions', async () => {
    const file = join(dir, 'report.html');
    await run(['--namespace', 'shop', ...range, '--report', file]);
    const html = readFileSync(file, 'utf8');

    expect(html.match(/<svg class="chart"/g)).toHaveLength(2);
    expect(html.match(/<polyline class="stddev"/g)!.length).toBeGreaterThanOrEqual(2);
    expect(html.match(/<line class="threshold" data-threshold="0.3"/g)).toHaveLength(2);
    // The chart is in cores: its markers are the stddev thresholds' actions.
    const actions = result.deployments.flatMap((d) => inCores(d).flatMap((r) => r.actions));
    expect(html.match(/<path class="action"/g)).toHaveLength(actions.length);
    expect(html).toContain('<td>0.5 relative</td>');
    expect(html).toContain(`data-at="${new Date(actions[0]!.at).toISOString()}"`);
    expect(html).toContain('History is not counterfactual');
    const data = JSON.parse(
      /<script type="application\/json" id="backtest-data">(.*?)<\/script>/s.exec(html)![1]!,
    );
    expect(data[0].stddev).toHaveLength(deployment('web').history.timeline.length);
    // Nothing is fetched: no URL, no external script, style or image.
    expect(html).not.toMatch(/https?:|src=|<link/);
  });

  it('renders the report in headless Chromium: the stddev line and every threshold line are drawn', async () => {
    requireProgram('chromium', 'chromium');
    const file = join(dir, 'render.html');
    const png = join(dir, 'render.png');
    await run(['--namespace', 'shop', '--deployment', 'web', ...range, '--report', file]);

    const chromium = spawnSync(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${join(dir, 'chromium')}`,
        `--screenshot=${png}`,
        '--window-size=1200,800',
        `file://${file}`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );

    expect(existsSync(png)).toBe(true);
    const image = readPng(png);
    expect([image.width, image.height]).toEqual([1200, 800]);
    expect(countColour(image, STDDEV_COLOR)).toBeGreaterThan(300);
    for (const index of [0, 1, 2]) {
      expect(countColour(image, thresholdColor(index))).toBeGreaterThan(150);
    }
    expect(chromium.error).toBeUndefined();
  }, 90_000);

  it.each([
    [['--from', '1d', '--to', '2d'], /--from must be before --to/],
    [['--from', 'last tuesday'], /--from: expected RFC 3339/],
    [['--thresholds', '0.3,abc'], /--thresholds: expected positive numbers/],
    [['--deployment', 'web'], /--deployment needs --namespace/],
    [['--step', '0s'], /--step: expected a duration of at least 1s/],
    [['--rules', '/nonexistent.yml'], /cannot read the rule file \/nonexistent\.yml \(ENOENT\)/],
  ])('when the flags are %j, then it exits 2 saying what is wrong', async (args, message) => {
    const { code, err } = await run(args);

    expect(code).toBe(EXIT.badInput);
    expect(err).toMatch(message);
  });

  it('when Prometheus is unreachable, then it exits 1 saying so', async () => {
    const io = captureIo({ PROMETHEUS_URL: `http://127.0.0.1:${await freePort()}` });

    const code = await runCommand(io, () => backtestCommand(['--namespace', 'shop', ...range], io));

    expect(code).toBe(EXIT.failure);
    expect(io.err()).toContain('pod-rebalancer: Prometheus unreachable');
  });
});
