import { formatDuration } from '../core/duration.js';
import { percent } from '../core/improvement.js';
import { DEFAULT_MIN_IMPROVEMENT, POLICY_ANNOTATIONS } from '../core/policy.js';
import type { BacktestResult, DeploymentResult } from './backtest-types.js';
import { describeGuards, guardedJson, guardLines } from './backtest-guards.js';
import type { RuleParameters } from './rule-file.js';
import type { ServiceModel, ThresholdResult } from './simulate.js';

/** Said in every output: the backtest replays what happened, not what an action would have changed. */
export const NOT_COUNTERFACTUAL =
  'History is not counterfactual: the series show what really happened. After a real action (or any ' +
  'restart) they show its effect; after a predicted action they do not, so later predictions assume ' +
  'the imbalance went on.';
export const READINESS_APPROXIMATION =
  'Prometheus history has no readiness or start times: a pod counts as Ready while it has samples, ' +
  'and as started at its first sample (it counts once it has MIN_POD_AGE of samples).';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * How a rule's actions would go: its `pod_rebalancer_rotation` (checked when the rule file was
 * read), else ROTATION. The backtest predicts actions, not the wait between two steps.
 */
function ruleRotation(
  rule: DeploymentResult['rule'],
  service: ServiceModel,
): { rotation: string; source: string } {
  const own = rule.annotations?.[POLICY_ANNOTATIONS.rotation]?.trim();
  if (own) return { rotation: own, source: 'alert annotation' };
  return { rotation: service.rotation ?? 'together', source: 'configuration' };
}

/** The result for scripts: times in RFC 3339, durations in seconds. */
export function backtestJson(result: BacktestResult) {
  const { request } = result;
  return {
    from: iso(request.fromMs),
    to: iso(request.toMs),
    stepSeconds: request.stepMs / 1000,
    rule: {
      ...request.rule,
      minAverage: Number.isFinite(request.rule.minAverage) ? request.rule.minAverage : null,
    },
    service: { ...request.service, activeWindow: request.service.activeWindow?.text ?? null },
    guards: {
      global: request.guards.global ?? null,
      rule: request.guards.rules.find((r) => r.rule === 'default')?.template ?? null,
      rules: request.guards.rules,
    },
    notes: [NOT_COUNTERFACTUAL, READINESS_APPROXIMATION],
    deployments: result.deployments.map((d) => ({
      namespace: d.namespace,
      deployment: d.deployment,
      pods: d.history.pods.map((p) => p.name),
      rule: {
        ...d.rule,
        minAverage: Number.isFinite(d.rule.minAverage) ? d.rule.minAverage : null,
        ...ruleRotation(d.rule, request.service),
      },
      thresholds: d.results.map((r) => ({
        threshold: r.threshold,
        measure: r.measure,
        fired: r.episodes.length,
        aboveSeconds: r.aboveMs / 1000,
        firingSeconds: r.firingMs / 1000,
        notifications: r.notifications,
        episodes: r.episodes.map((e) => ({
          firingAt: iso(e.firingAt),
          resolvedAt: e.resolvedAt === undefined ? null : iso(e.resolvedAt),
        })),
        actions: r.actions.map((a) => ({
          at: iso(a.at),
          stats: a.stats,
          pods: a.pods.map(({ name, cpu, role }) => ({ name, cpu, role })),
          cooldownSeconds: a.cooldownMs / 1000,
        })),
        skipped: r.skipped,
        removedByImprovementGate: r.removedByImprovementGate,
      })),
      ...(d.guarded ? { guarded: guardedJson(d.guarded) } : {}),
    })),
  };
}

/** "2h05m", "45m", "0m": durations at the scale people read a backtest. */
export function humanDuration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
}

function pad(cells: string[], widths: number[]): string {
  return cells
    .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
    .join('  ');
}

function skippedText(skipped: ThresholdResult['skipped']): string {
  const parts = Object.entries(skipped).map(([reason, count]) => `${reason} ${count}`);
  return parts.length ? parts.join(', ') : '-';
}

const HEADER = ['threshold', 'fired', 'above', 'firing', 'notified', 'actions', 'pods', 'skipped'];

/** "0.8 cores" or "0.5 relative", marked with * when it is the rule's own. */
export function thresholdLabel(r: Pick<ThresholdResult, 'threshold' | 'measure'>): string {
  return r.measure === 'stddev' ? `${r.threshold} cores` : `${r.threshold} relative`;
}

function isRulesOwn(r: ThresholdResult, rule: DeploymentResult['rule']): boolean {
  return r.threshold === rule.threshold && r.measure === (rule.measure ?? 'stddev');
}

function thresholdTable(d: DeploymentResult): string[] {
  const results = d.results;
  const rows = results.map((r) => [
    `${thresholdLabel(r)}${isRulesOwn(r, d.rule) ? ' *' : ''}`,
    String(r.episodes.length),
    humanDuration(r.aboveMs),
    humanDuration(r.firingMs),
    String(r.notifications),
    String(r.actions.length),
    String(r.actions.reduce((sum, a) => sum + a.pods.length, 0)),
    skippedText(r.skipped),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  widths[widths.length - 1] = 0;
  return [pad(HEADER, widths), ...rows.map((row) => pad(row, widths))].map(
    (line) => `  ${line.trimEnd()}`,
  );
}

const MAX_LISTED_ACTIONS = 20;

function actionLines(result: ThresholdResult): string[] {
  if (result.actions.length === 0) return [];
  const lines = result.actions.slice(0, MAX_LISTED_ACTIONS).map((a) => {
    const pods = a.pods.map((p) => `${p.name} (${p.role}, ${p.cpu.toFixed(3)})`).join('  ');
    return `    ${iso(a.at)}  stddev ${a.stats.stddev.toFixed(3)} over ${a.stats.count} pods  ${pods}  cooldown ${formatDuration(a.cooldownMs)}`;
  });
  const more = result.actions.length - MAX_LISTED_ACTIONS;
  if (more > 0) lines.push(`    ... and ${more} more (--json lists all)`);
  return [`  predicted actions at ${thresholdLabel(result)}:`, ...lines];
}

/** How many actions the improvement gate removed, at each threshold where it removed any. */
function improvementLine(d: DeploymentResult, service: ServiceModel): string {
  const min = percent(d.rule.minImprovement ?? service.minImprovement ?? DEFAULT_MIN_IMPROVEMENT);
  const removed = d.results
    .filter((r) => r.removedByImprovementGate > 0)
    .map((r) => `${r.removedByImprovementGate} at ${thresholdLabel(r)}`);
  const what = removed.length > 0 ? `removed ${removed.join(', ')}` : 'removed no action';
  return `  improvement gate (at least ${min} predicted): ${what}`;
}

function describeRule(rule: RuleParameters): string {
  const guards = [`at least ${rule.minPods} pods`];
  if (Number.isFinite(rule.minAverage)) guards.push(`average above ${rule.minAverage} cores`);
  const overrides = rule.rules.filter((r) => r.name !== 'default').length;
  const more = overrides > 0 ? `; ${overrides} override rule(s)` : '';
  return `stddev above the threshold for ${formatDuration(rule.forMs)}, ${guards.join(', ')}, rate window ${formatDuration(rule.rateWindowMs)} (from ${rule.source}${more})`;
}

function describeService(service: ServiceModel): string {
  const { effect } = service;
  return (
    `MIN_PODS ${service.minPods}, MIN_POD_AGE ${formatDuration(service.minPodAgeMs)}, ` +
    `MIN_IMPROVEMENT ${percent(service.minImprovement ?? DEFAULT_MIN_IMPROVEMENT)}, COOLDOWN ${formatDuration(effect.baseCooldownMs)} ` +
    `(doubling after ineffective actions up to ${formatDuration(effect.maxCooldownMs)}, stopping after ${effect.ineffectiveLimit}), ` +
    `Alertmanager repeat ${formatDuration(service.repeatIntervalMs)}` +
    (service.activeWindow ? `, ACTIVE_WINDOW "${service.activeWindow.text}"` : '')
  );
}

function describeRotation(rule: DeploymentResult['rule'], service: ServiceModel): string {
  const { rotation, source } = ruleRotation(rule, service);
  return `${rotation} (${source})`;
}

/** Breaks a sentence into lines of at most `width` characters, at spaces. */
function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

/** The readable report: one table per Deployment, thresholds side by side, then the predicted actions. */
export function formatBacktest(result: BacktestResult): string {
  const { request } = result;
  const lines = [
    `pod-rebalancer backtest ${iso(request.fromMs)} .. ${iso(request.toMs)}, step ${formatDuration(request.stepMs)}`,
    `rule:    ${describeRule(request.rule)}`,
    `service: ${describeService(request.service)}`,
    ...[describeGuards(request.guards) ?? []].flat(),
    '',
  ];
  if (result.deployments.length === 0)
    lines.push('no Deployment found (kube_replicaset_owner has no series in the range)', '');
  for (const d of result.deployments) {
    lines.push(
      `${d.namespace}/${d.deployment} (${d.history.pods.length} pods seen)`,
      `  rule ${d.rule.name}: ${thresholdLabel({ threshold: d.rule.threshold, measure: d.rule.measure ?? 'stddev' })}, at least ${d.rule.minPods} pods, rotation ${describeRotation(d.rule, request.service)} (* in the table)`,
      ...thresholdTable(d),
      improvementLine(d, request.service),
    );
    for (const r of d.results) lines.push(...actionLines(r));
    if (d.guarded) lines.push(...guardLines(d.results, d.guarded));
    lines.push('');
  }
  lines.push(
    'cores: the stddev measure; relative: stddev ÷ mean. Both measures are side by side for every Deployment.',
    'fired: times the alert started firing; above: time the condition held (pending or firing);',
    'notified: notifications to the service (start, then every repeat interval); pods: pods it would remove.',
    ...wrap(NOT_COUNTERFACTUAL),
    ...wrap(READINESS_APPROXIMATION),
  );
  return `${lines.join('\n')}\n`;
}
