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

/**
 * What Prometheus answered for one guard (see GuardSource in ports.ts): how many series it
 * returns, never which. A guard runs with the service's credentials and its expression comes
 * from whoever wrote the rule: its labels and values must not travel on to reports, logs and
 * Events, where they would become a way to read other tenants' data.
 */
export type GuardAnswer = { count: number } | { rejected: string };

/**
 * The expression sent for a guard: its series counted by Prometheus, so the answer is one
 * number whatever the guard matches (a guard over 200,000 series costs no memory here).
 */
export function boundedGuardQuery(expr: string): string {
  return `count(${expr})`;
}

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
 * What a guard's answer means: it holds (`guarded`, saying how many series it returned),
 * Prometheus refused the expression (`invalid-policy`), or it lets the action through.
 */
export function guardGate(guard: Guard, answer: GuardAnswer): GateResult {
  if ('rejected' in answer) {
    return {
      reason: 'invalid-policy',
      detail: `${guard.name} was rejected by Prometheus: ${answer.rejected} (expression: ${guard.expr})`,
    };
  }
  if (answer.count <= 0) return undefined;
  return {
    reason: 'guarded',
    detail: `${guard.name} holds: guard returned ${answer.count} series (expression: ${guard.expr})`,
  };
}
