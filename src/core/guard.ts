/**
 * Guards: PromQL expressions that hold actions back while something bigger is wrong (a broker
 * outage, a consumer group's lag rising). GUARD_QUERY is global; an alert's
 * `pod_rebalancer_guard` annotation is the rule's own, templated per Deployment in Git. Pure:
 * what a guard is, and what its answer means.
 */
import type { GateResult } from './decide.js';

/** The annotation that carries the rule's guard. */
export const GUARD_ANNOTATION = 'pod_rebalancer_guard';

/** Which guard: low cardinality, the label of `pod_rebalancer_guarded_total`. */
export type GuardKind = 'global' | 'rule';

export interface Guard {
  kind: GuardKind;
  /** How a person finds it: `GUARD_QUERY` or the alert's annotation. */
  name: string;
  expr: string;
}

/** One series a PromQL expression returned: its labels (`__name__` included) and value. */
export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** What Prometheus answered for one guard (see SeriesAnswer in ports.ts). */
export type GuardAnswer = { series: readonly Series[] } | { rejected: string };

const GLOBAL_NAME = 'GUARD_QUERY';
const RULE_NAME = `the alert's ${GUARD_ANNOTATION} annotation`;

/**
 * The guards that apply to one alert, global first. An annotation that is present but blank is
 * a broken rule: `invalid-policy`, never "no guard", so a templating slip cannot remove a guard.
 */
export function guardsFor(
  globalQuery: string | undefined,
  annotations: Readonly<Record<string, string>>,
): Guard[] | NonNullable<GateResult> {
  const guards: Guard[] = [];
  if (globalQuery) guards.push({ kind: 'global', name: GLOBAL_NAME, expr: globalQuery });
  const own = annotations[GUARD_ANNOTATION];
  if (own !== undefined) {
    if (own.trim() === '') {
      return { reason: 'invalid-policy', detail: `${RULE_NAME} is empty` };
    }
    guards.push({ kind: 'rule', name: RULE_NAME, expr: own.trim() });
  }
  return guards;
}

/** A series as PromQL prints it: `name{label="value", ...} value`, labels sorted. */
export function formatSeries(series: Series): string {
  const { __name__: name = '', ...labels } = series.labels;
  const pairs = Object.keys(labels)
    .sort()
    .map((key) => `${key}=${JSON.stringify(labels[key])}`);
  return `${name}{${pairs.join(', ')}} ${series.value}`;
}

/**
 * What a guard's answer means: it holds (`guarded`, naming the first series), Prometheus refused
 * the expression (`invalid-policy`), or it lets the action through (undefined).
 */
export function guardGate(guard: Guard, answer: GuardAnswer): GateResult {
  if ('rejected' in answer) {
    return {
      reason: 'invalid-policy',
      detail: `${guard.name} was rejected by Prometheus: ${answer.rejected} (expression: ${guard.expr})`,
    };
  }
  const [first] = answer.series;
  if (!first) return undefined;
  const more = answer.series.length > 1 ? ` and ${answer.series.length - 1} more series` : '';
  return {
    reason: 'guarded',
    detail: `${guard.name} holds: ${formatSeries(first)}${more} (expression: ${guard.expr})`,
  };
}
