import { isNamespaceName, isObjectName } from '../core/names.js';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { prometheusConnection } from '../adapters/prometheus.js';
import type { Config } from '../config.js';
import { pipelineSettings } from '../service.js';
import { formatDuration, parseDuration } from '../core/duration.js';
import type { Target } from '../core/types.js';
import {
  BadInput,
  EXIT,
  loadOperatorConfig,
  parseFlags,
  type ExitCode,
  type OperatorIo,
} from './command.js';
import { chunks, PrometheusHistory } from './history.js';
import { backtestJson, formatBacktest } from './backtest-format.js';
import { backtestGuards, guardHistory, ruleGuard } from './backtest-guards.js';
import { renderReport } from './report-html.js';
import type {
  AppliedRule,
  BacktestRequest,
  BacktestResult,
  DeploymentResult,
} from './backtest-types.js';
import {
  DEFAULT_RULE_FILE,
  readOverrideFiles,
  readRuleFile,
  ruleFor,
  ruleFromConfig,
  type RuleParameters,
} from './rule-file.js';
import {
  simulateThreshold,
  stepStats,
  type DeploymentHistory,
  type GuardAt,
  type Timeline,
} from './simulate.js';

export type { BacktestRequest, BacktestResult, DeploymentResult } from './backtest-types.js';

/** Range queries can be heavier than the service's instant query. */
const MIN_RANGE_TIMEOUT_MS = 60_000;
const DEFAULT_REPEAT_INTERVAL = '20m';

const FLAGS = {
  namespace: { type: 'string' },
  deployment: { type: 'string' },
  from: { type: 'string', default: '7d' },
  to: { type: 'string', default: 'now' },
  step: { type: 'string', default: '1m' },
  thresholds: { type: 'string' },
  'relative-thresholds': { type: 'string' },
  rules: { type: 'string' },
  for: { type: 'string' },
  'min-average': { type: 'string' },
  'repeat-interval': { type: 'string', default: DEFAULT_REPEAT_INTERVAL },
  report: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const BACKTEST_USAGE = `usage: pod-rebalancer backtest [flags]

Replays the alert rule and the service over past CPU history from Prometheus.

  --namespace NS         only this namespace (default: every namespace)
  --deployment NAME      only this Deployment (needs --namespace; default: every Deployment
                         kube_replicaset_owner names in the range)
  --from T, --to T       RFC 3339, "now" or a duration ago such as 7d (default 7d .. now)
  --step D               evaluation step (default 1m)
  --thresholds LIST      cores (stddev), comma-separated (default: each Deployment's rule's,
                         a third below and above)
  --relative-thresholds LIST
                         stddev ÷ mean, comma-separated (default: a relative rule's own, a
                         third below and above, else 0.33,0.5,0.67)
  --rules FILES          rule files, comma-separated; the first holds the default rule, the
                         others overrides (default: every rules/*.yml of this checkout)
  --for D                override the rule's for:
  --min-average X        override the rule's average-load guard (cores)
  --repeat-interval D    Alertmanager's repeat_interval (default 20m)
  --report FILE.html     write a self-contained HTML report with a chart
  --json                 print the result as JSON

GUARD_QUERY and the pod_rebalancer_guard annotation of each Deployment's rule, when set, are
evaluated over the same history: the actions they would have held back are shown next to the
run without them.`;

/** A point in time: RFC 3339, `now`, or a duration before now (`7d`, `90m`). */
export function parseTime(text: string, now: Date, flag: string): number {
  if (text === 'now') return now.getTime();
  const ago = parseDuration(text);
  if (ago !== undefined) return now.getTime() - ago;
  const at = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text)
    ? Date.parse(text)
    : NaN;
  if (Number.isNaN(at)) {
    throw new BadInput(
      `--${flag}: expected RFC 3339 (2026-11-22T00:00:00Z), "now" or a duration ago such as 7d (got "${text}")`,
    );
  }
  return at;
}

function durationFlag(text: string, flag: string, minMs: number): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < minMs) {
    throw new BadInput(
      `--${flag}: expected a duration of at least ${formatDuration(minMs)}, such as 1m (got "${text}")`,
    );
  }
  return ms;
}

function numberFlag(text: string, flag: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new BadInput(`--${flag}: expected a number (got "${text}")`);
  return value;
}

/** A third below, the threshold itself, and a third above. */
function around(threshold: number): number[] {
  return [threshold * (2 / 3), threshold, threshold * (4 / 3)].map(
    (v) => Math.round(v * 100) / 100,
  );
}

/** `--thresholds`, or a third below and above the rule's own. */
export function parseThresholds(
  text: string | undefined,
  ruleThreshold: number,
  flag = 'thresholds',
): number[] {
  const values =
    text === undefined ? around(ruleThreshold) : text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((v) => !(v > 0) || !Number.isFinite(v))) {
    const example =
      flag === 'thresholds'
        ? 'cores, comma-separated, e.g. 0.2,0.3,0.4'
        : 'comma-separated, e.g. 0.3,0.5';
    throw new BadInput(`--${flag}: expected positive numbers of ${example} (got "${text}")`);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** The relative threshold offered when no rule and no flag says one. */
const DEFAULT_RELATIVE_THRESHOLD = 0.5;

function checkName(value: string | undefined, flag: string): string | undefined {
  const valid = flag === 'namespace' ? isNamespaceName : isObjectName;
  if (value !== undefined && !valid(value))
    throw new BadInput(`--${flag}: expected a Kubernetes name (got "${value}")`);
  return value;
}

function ruleParameters(values: Record<string, unknown>, config: Readonly<Config>): RuleParameters {
  const file = values.rules as string | undefined;
  const overrides = {
    forMs: values.for === undefined ? undefined : durationFlag(values.for as string, 'for', 0),
    minAverage:
      values['min-average'] === undefined
        ? undefined
        : numberFlag(values['min-average'] as string, 'min-average'),
  };
  const files = file === undefined ? defaultRuleFiles() : file.split(',').map((f) => f.trim());
  const rule =
    files.length > 0
      ? readRuleFile(files[0]!, config.alertNames)
      : ruleFromConfig(config, { forMs: parseDuration('10m')!, minAverage: 0.05 });
  rule.rules.push(...readOverrideFiles(files.slice(1), config.alertNames));
  return {
    ...rule,
    forMs: overrides.forMs ?? rule.forMs,
    minAverage: overrides.minAverage ?? rule.minAverage,
  };
}

/** The rule file of this checkout and every other rule file beside it (overrides); none in an image. */
function defaultRuleFiles(): string[] {
  if (!existsSync(DEFAULT_RULE_FILE)) return [];
  const dir = dirname(DEFAULT_RULE_FILE);
  const others = readdirSync(dir)
    .filter((name) => name.endsWith('.yml') && join(dir, name) !== DEFAULT_RULE_FILE)
    .map((name) => join(dir, name))
    .sort();
  return [DEFAULT_RULE_FILE, ...others];
}

/** Parses and checks the flags against the configuration. */
export function backtestRequest(
  argv: string[],
  config: Readonly<Config>,
  now: Date,
): BacktestRequest {
  const { values, positionals } = parseFlags(argv, FLAGS);
  if (positionals.length > 0)
    throw new BadInput(
      `unexpected argument "${positionals[0]}"; see pod-rebalancer backtest --help`,
    );
  if (values.deployment !== undefined && values.namespace === undefined) {
    throw new BadInput('--deployment needs --namespace');
  }
  const stepMs = durationFlag(values.step, 'step', 1000);
  const toMs = parseTime(values.to, now, 'to');
  const fromMs = Math.ceil(parseTime(values.from, now, 'from') / stepMs) * stepMs;
  if (!(fromMs < toMs)) throw new BadInput('--from must be before --to');
  const rule = ruleParameters(values, config);
  return {
    namespace: checkName(values.namespace, 'namespace'),
    deployment: checkName(values.deployment, 'deployment'),
    fromMs,
    toMs,
    stepMs,
    thresholds: parseThresholds(
      values.thresholds,
      rule.measure === 'relative_stddev' ? config.threshold : rule.threshold,
    ),
    relativeThresholds: parseThresholds(
      values['relative-thresholds'],
      DEFAULT_RELATIVE_THRESHOLD,
      'relative-thresholds',
    ),
    given: {
      thresholds: values.thresholds !== undefined,
      relativeThresholds: values['relative-thresholds'] !== undefined,
    },
    rule,
    service: {
      minPods: config.minPods,
      minPodAgeMs: config.minPodAgeMs,
      minImprovement: config.minImprovement,
      repeatIntervalMs: durationFlag(values['repeat-interval'], 'repeat-interval', 1000),
      activeWindow: config.activeWindow,
      rotation: config.rotation,
      effect: pipelineSettings(config).effect,
    },
    guards: backtestGuards(config.guardQuery, rule.rules),
    report: values.report,
    json: values.json,
  };
}

/**
 * The fetched timeline: from `from` minus a warm-up (the rule's `for:` and MIN_POD_AGE, so that
 * an alert pending and pods' ages at `from` are known) to `to`, on the step grid.
 */
export function timelineOf(request: BacktestRequest): Timeline {
  const warmUpSteps = Math.ceil(
    Math.max(request.rule.forMs, request.service.minPodAgeMs) / request.stepMs,
  );
  const startMs = request.fromMs - warmUpSteps * request.stepMs;
  const length = Math.floor((request.toMs - startMs) / request.stepMs) + 1;
  return { startMs, stepMs: request.stepMs, length };
}

/** The Prometheus client for range and instant queries, from the service's configuration. */
export function prometheusHistory(config: Readonly<Config>, minTimeoutMs = 0): PrometheusHistory {
  const connection = prometheusConnection(config);
  return new PrometheusHistory({
    ...connection,
    timeoutMs: Math.max(connection.timeoutMs, minTimeoutMs),
  });
}

/** A progress bar on stderr when it is a terminal and there is more than one query to wait for. */
function progress(io: OperatorIo, total: number): { tick(label: string): void; done(): void } {
  if (!io.stderr.isTTY || total <= 1) return { tick: () => undefined, done: () => undefined };
  let count = 0;
  const width = 30;
  return {
    tick(label) {
      count++;
      const filled = Math.round((count / total) * width);
      io.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${count}/${total} queries  ${label}\x1b[K`,
      );
    },
    done: () => io.stderr.write('\r\x1b[K'),
  };
}

async function targetsOf(
  request: BacktestRequest,
  prometheus: PrometheusHistory,
): Promise<Target[]> {
  if (request.namespace !== undefined && request.deployment !== undefined) {
    return [{ namespace: request.namespace, deployment: request.deployment }];
  }
  return prometheus.deployments(request.namespace, {
    from: new Date(request.fromMs),
    to: new Date(request.toMs),
  });
}

/** The rule that decides for this Deployment: its own, its namespace's, else the default. */
export function appliedRule(request: BacktestRequest, target: Target): AppliedRule {
  const { rules, ...main } = request.rule;
  const rule = ruleFor(rules, target, { ...main, name: 'default' });
  return { ...rule, name: rule.name };
}

/**
 * The thresholds to put side by side for one Deployment, in both measures: the flags' lists
 * as given, else around the Deployment's own rule in its measure (and the request's in the other).
 */
function thresholdsFor(request: BacktestRequest, rule: AppliedRule) {
  const own = (measure: 'stddev' | 'relative_stddev', given: boolean, list: number[]) =>
    !given && (rule.measure ?? 'stddev') === measure ? around(rule.threshold) : list;
  return {
    stddev: own('stddev', request.given.thresholds, request.thresholds),
    relative_stddev: own(
      'relative_stddev',
      request.given.relativeThresholds,
      request.relativeThresholds,
    ),
  };
}

/**
 * Simulates every threshold, in both measures, over one Deployment's history, and again with
 * the guards if any.
 */
export function simulateDeployment(
  history: DeploymentHistory,
  request: BacktestRequest,
  guardAt?: GuardAt,
): DeploymentResult {
  const stats = stepStats(history);
  const rule = appliedRule(request, history);
  const lists = thresholdsFor(request, rule);
  const run = (guard?: GuardAt) =>
    (['stddev', 'relative_stddev'] as const).flatMap((measure) =>
      lists[measure].map((threshold) =>
        simulateThreshold(
          history,
          stats,
          { rule: { ...rule, threshold, measure }, service: request.service, guardAt: guard },
          request.fromMs,
        ),
      ),
    );
  const { namespace, deployment } = history;
  const results = run();
  return {
    namespace,
    deployment,
    history,
    stats,
    rule,
    results,
    guarded: guardAt && run(guardAt),
  };
}

/** Fetches the history of every Deployment asked for and simulates it. */
export async function runBacktest(
  request: BacktestRequest,
  prometheus: PrometheusHistory,
  io: OperatorIo,
): Promise<BacktestResult> {
  const timeline = timelineOf(request);
  const targets = await targetsOf(request, prometheus);
  const bar = progress(io, targets.length * chunks(timeline).length);
  const deployments: DeploymentResult[] = [];
  const guards = guardHistory(prometheus, request.guards, timeline);
  for (const target of targets) {
    const history = await prometheus.podCpu(
      target,
      { timeline, rateWindowMs: request.rule.rateWindowMs },
      () => bar.tick(`${target.namespace}/${target.deployment}`),
    );
    // The rule's guard is the one its alert would carry: that of the rule deciding for it.
    const ruleTemplate = ruleGuard(appliedRule(request, target));
    deployments.push(
      simulateDeployment(history, request, await guards.forTarget(target, ruleTemplate)),
    );
  }
  bar.done();
  return { request, deployments };
}

/** `pod-rebalancer backtest`: exit 0 when the backtest ran, 1 when Prometheus failed, 2 on bad input. */
export async function backtestCommand(
  argv: string[],
  io: OperatorIo,
  now = new Date(),
): Promise<ExitCode> {
  const config = loadOperatorConfig(io.env);
  const request = backtestRequest(argv, config, now);
  const result = await runBacktest(request, prometheusHistory(config, MIN_RANGE_TIMEOUT_MS), io);
  if (request.report) writeFileSync(request.report, renderReport(result));
  io.stdout.write(
    request.json ? `${JSON.stringify(backtestJson(result), null, 2)}\n` : formatBacktest(result),
  );
  if (request.report && !request.json) io.stdout.write(`report written to ${request.report}\n`);
  return EXIT.done;
}
