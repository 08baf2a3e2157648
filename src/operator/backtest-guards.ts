/**
 * The guards in the backtest: GUARD_QUERY and the rule's `pod_rebalancer_guard`, evaluated with
 * range queries over the same history, so that the backtest shows which actions they would have
 * held back, side by side with the run without them.
 */
import { formatSeries, GUARD_ANNOTATION, type Guard } from '../core/guard.js';
import type { Target } from '../core/types.js';
import { UpstreamError } from '../errors.js';
import { BadInput } from './command.js';
import type { PrometheusHistory } from './history.js';
import type { GuardAt, ThresholdResult, Timeline } from './simulate.js';

/** The guards a backtest applies: GUARD_QUERY, and every alert rule's guard as written (a template). */
export interface BacktestGuards {
  global: string | undefined;
  /** The alert rules that carry a `pod_rebalancer_guard`, by their `pod_rebalancer_rule` name. */
  rules: { rule: string; template: string }[];
}

/** A rule's `pod_rebalancer_guard` annotation as written, or undefined when it has none. */
export function ruleGuard(rule: { annotations?: Record<string, string> }): string | undefined {
  return rule.annotations?.[GUARD_ANNOTATION]?.trim() || undefined;
}

/**
 * The guards from the configuration and the alert rules the backtest already read (every file of
 * `--rules`, the default rule and the overrides). Which rule's guard applies to a Deployment is
 * decided per Deployment, by the rule that decides for it (`appliedRule`).
 */
export function backtestGuards(
  guardQuery: string | undefined,
  rules: readonly { name: string; annotations?: Record<string, string> }[],
): BacktestGuards {
  return {
    global: guardQuery,
    rules: rules.flatMap((rule) => {
      const template = ruleGuard(rule);
      return template === undefined ? [] : [{ rule: rule.name, template }];
    }),
  };
}

/**
 * The rule's guard as Prometheus renders it for one Deployment's alert. The alert's labels are
 * namespace and deployment, so those are what a guard template can use here; anything else in
 * `{{ }}` cannot be rendered without Prometheus's alert and is refused by name.
 */
export function renderGuard(template: string, target: Target): string {
  const labels: Record<string, string> = {
    namespace: target.namespace,
    deployment: target.deployment,
  };
  const rendered = template.replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, (whole, name: string) => {
    const value = labels[name];
    if (value === undefined) {
      throw new BadInput(
        `the rule's ${GUARD_ANNOTATION} uses {{ $labels.${name} }}: the backtest can render only $labels.namespace and $labels.deployment`,
      );
    }
    return value;
  });
  if (rendered.includes('{{')) {
    throw new BadInput(
      `the rule's ${GUARD_ANNOTATION} uses template syntax the backtest cannot render (only {{ $labels.namespace }} and {{ $labels.deployment }}): ${template}`,
    );
  }
  return rendered;
}

/** For each step of the timeline, the first guard that holds and its first series. */
async function holdSteps(
  prometheus: PrometheusHistory,
  guard: Guard,
  timeline: Timeline,
  steps: (string | undefined)[],
): Promise<void> {
  let series;
  try {
    series = await prometheus.rangeSeries(guard.expr, timeline);
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    throw new UpstreamError(
      error.upstream,
      error.kind,
      error.retryable,
      `${guard.name} (${guard.expr}): ${error.message}`,
    );
  }
  for (let i = 0; i < timeline.length; i++) {
    if (steps[i] !== undefined) continue;
    const first = series.find((s) => Number.isFinite(s.values[i]));
    if (first) {
      steps[i] =
        `${guard.name} holds: ${formatSeries({ labels: first.labels, value: first.values[i]! })}`;
    }
  }
}

/**
 * The guards' history, fetched with range queries: GUARD_QUERY once for every Deployment, the
 * guard of the rule that decides for a Deployment rendered and fetched per Deployment.
 * `forTarget` is undefined when neither applies.
 */
export function guardHistory(
  prometheus: PrometheusHistory,
  guards: BacktestGuards,
  timeline: Timeline,
): { forTarget(target: Target, ruleTemplate: string | undefined): Promise<GuardAt | undefined> } {
  let global: Promise<(string | undefined)[]> | undefined;
  const globalSteps = () => {
    global ??= (async () => {
      const steps = new Array<string | undefined>(timeline.length);
      if (guards.global) {
        const guard: Guard = { kind: 'global', name: 'GUARD_QUERY', expr: guards.global };
        await holdSteps(prometheus, guard, timeline, steps);
      }
      return steps;
    })();
    return global;
  };
  return {
    async forTarget(target, ruleTemplate) {
      if (!guards.global && !ruleTemplate) return undefined;
      const steps = [...(await globalSteps())];
      if (ruleTemplate) {
        const expr = renderGuard(ruleTemplate, target);
        const name = `the rule's ${GUARD_ANNOTATION}`;
        await holdSteps(prometheus, { kind: 'rule', name, expr }, timeline, steps);
      }
      return (t) => steps[Math.round((t - timeline.startMs) / timeline.stepMs)];
    },
  };
}

/** The header line: which guards the backtest applied (a rule's only to the Deployments it decides for). */
export function describeGuards(guards: BacktestGuards): string | undefined {
  const parts = [
    ...(guards.global ? [`GUARD_QUERY ${guards.global}`] : []),
    ...guards.rules.map(({ rule, template }) =>
      rule === 'default'
        ? `the rule's ${GUARD_ANNOTATION} ${template}`
        : `rule ${rule}'s ${GUARD_ANNOTATION} ${template}`,
    ),
  ];
  return parts.length ? `guards:  ${parts.join('; ')}` : undefined;
}

const MAX_LISTED = 20;
const iso = (ms: number) => new Date(ms).toISOString();

/** Actions without and with the guards, per threshold, and the actions the guards held back. */
export function guardLines(
  unguarded: readonly ThresholdResult[],
  guarded: readonly ThresholdResult[],
): string[] {
  const lines = ['  with the guards:'];
  guarded.forEach((g, i) => {
    const held = g.heldBack ?? [];
    lines.push(
      `    ${g.threshold} cores: ${unguarded[i]!.actions.length} actions without guards, ${g.actions.length} with them; ${held.length} held back`,
    );
    for (const h of held.slice(0, MAX_LISTED)) {
      const pods = h.pods.map((p) => `${p.name} (${p.role})`).join('  ');
      lines.push(`      ${iso(h.at)}  held back: ${pods}  by ${h.detail}`);
    }
    if (held.length > MAX_LISTED)
      lines.push(`      ... and ${held.length - MAX_LISTED} more (--json lists all)`);
  });
  return lines;
}

/** The guarded run for scripts: per threshold, the actions with guards and those held back. */
export function guardedJson(guarded: readonly ThresholdResult[]) {
  return guarded.map((g) => ({
    threshold: g.threshold,
    actions: g.actions.map((a) => ({ at: iso(a.at), pods: a.pods.map((p) => p.name) })),
    heldBack: (g.heldBack ?? []).map((h) => ({
      at: iso(h.at),
      by: h.detail,
      stats: h.stats,
      pods: h.pods.map(({ name, cpu, role }) => ({ name, cpu, role })),
    })),
  }));
}
