import { readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadYaml } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import { parseDuration } from '../core/duration.js';
import { BadInput } from './command.js';
import { policyFromAnnotations, type Measure } from '../core/policy.js';
import type { Target } from '../core/types.js';
import type { RuleModel } from './simulate.js';

/** The rule file in this checkout (dist/operator → rules/), the one people tune in Git. */
export const DEFAULT_RULE_FILE = fileURLToPath(
  new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url),
);

const PER_POD = 'namespace_deployment_pod:cpu_usage:rate';
// `by (namespace, deployment) (namespace_deployment_pod:cpu_usage:rate{...})`, the selector optional.
const OVER = String.raw`by \(namespace, deployment\) \(namespace_deployment_pod:cpu_usage:rate(\{[^}]*\})?\)\s*`;
const THRESHOLD = new RegExp(String.raw`stddev ${OVER}>\s*([0-9.]+)`);
const RELATIVE = new RegExp(String.raw`stddev ${OVER}/\s*avg ${OVER}>\s*([0-9.]+)`);
const MIN_PODS = new RegExp(String.raw`count ${OVER}>=\s*(\d+)`);
// Not the divisor of a relative measure.
const MIN_AVERAGE = new RegExp(String.raw`(?<!/ )avg ${OVER}>\s*([0-9.]+)`);
const RATE_WINDOW = /rate\(container_cpu_usage_seconds_total\{[^}]*\}\[(\w+)\]\)/;

/** What the backtest takes from the rule file: the alert's parameters and the rate window. */
export interface RuleParameters extends RuleModel {
  /** The file they came from, or a sentence saying they came from the configuration. */
  source: string;
  rateWindowMs: number;
  /** Every alert rule of the file, the default and the overrides (empty without a file). */
  rules: AlertRule[];
}

/** One alert rule of the file: what it selects and the policy it carries. */
export interface AlertRule extends RuleModel {
  /** Its `pod_rebalancer_rule` label, or `default` for the rule without one. */
  name: string;
  /** The namespace and Deployment its expression selects; none for the default rule. */
  selector: { namespace?: string; deployment?: string };
  /** The numbers written in the expression (the drift test compares them with the annotations). */
  expression: { threshold?: number; measure?: Measure; minPods?: number };
  annotations: Record<string, string>;
}

interface RuleEntry {
  alert?: string;
  record?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rulesOf(text: string, file: string): RuleEntry[] {
  let parsed: { groups?: { rules?: RuleEntry[] }[] };
  try {
    // The Kubernetes client's YAML loader is a production dependency; it returns plain data.
    parsed = loadYaml(text);
  } catch (error) {
    throw new BadInput(`${file}: not YAML (${(error as Error).message.split('\n')[0]})`);
  }
  return (parsed.groups ?? []).flatMap((group) => group.rules ?? []);
}

/** A path as the operator would type it: relative when it lies below the working directory. */
function shownPath(file: string): string {
  const shown = relative(process.cwd(), file);
  return shown && !shown.startsWith('..') && !isAbsolute(shown) ? shown : file;
}

function captured(expr: string, pattern: RegExp, group = 2): string | undefined {
  return pattern.exec(expr.replace(/\s+/g, ' '))?.[group];
}

function selectorOf(expr: string): AlertRule['selector'] {
  const text = captured(expr, THRESHOLD, 1) ?? captured(expr, RELATIVE, 1) ?? '';
  const label = (name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(text)?.[1];
  return definedOnly({ namespace: label('namespace'), deployment: label('deployment') });
}

function definedOnly<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as T;
}

/** The threshold, measure and minimum pods as the expression writes them. */
export function expressionPolicy(expr: string): AlertRule['expression'] {
  const relative = captured(expr, RELATIVE, 3);
  const absolute = captured(expr, THRESHOLD);
  const minPods = captured(expr, MIN_PODS);
  return definedOnly({
    threshold: relative !== undefined ? Number(relative) : absolute && Number(absolute),
    measure: relative !== undefined ? 'relative_stddev' : absolute && 'stddev',
    minPods: minPods === undefined ? undefined : Number(minPods),
  }) as AlertRule['expression'];
}

/**
 * Every alert of the file whose name is in ALERT_NAMES, with the policy it carries: its
 * annotations, as the service reads them, else the numbers in its expression.
 */
export function alertRulesOf(
  rules: RuleEntry[],
  alertNames: ReadonlySet<string>,
  file: string,
): AlertRule[] {
  return rules
    .filter((rule) => rule.alert !== undefined && alertNames.has(rule.alert) && rule.expr)
    .map((rule) => {
      const name = rule.labels?.pod_rebalancer_rule ?? 'default';
      const expression = expressionPolicy(rule.expr!);
      if (expression.threshold === undefined) {
        throw new BadInput(
          `${file}: alert ${rule.alert} (${name}) has no "stddev by (namespace, deployment) (${PER_POD}) > X"`,
        );
      }
      const annotations = rule.annotations ?? {};
      const policy = policyFromAnnotations(annotations, {
        threshold: expression.threshold,
        minPods: expression.minPods ?? 0,
      });
      if (!policy.ok)
        throw new BadInput(`${file}: alert ${rule.alert} (${name}): ${policy.detail}`);
      return {
        name,
        selector: selectorOf(rule.expr!),
        expression,
        annotations,
        threshold: policy.policy.threshold,
        measure: policy.policy.measure,
        minPods: policy.policy.minPods,
        ...(policy.policy.source.minImprovement === 'alert annotation'
          ? { minImprovement: policy.policy.minImprovement }
          : {}),
        forMs: forOf(rule, file),
        minAverage: Number(captured(rule.expr!, MIN_AVERAGE) ?? -Infinity),
      };
    });
}

/**
 * The rule that decides for a Deployment: its own, else its namespace's, else the default,
 * as the markers and `unless` clauses make Prometheus decide.
 */
export function ruleFor<T extends RuleModel>(
  rules: readonly (AlertRule | T)[],
  target: Target,
  fallback: T,
): AlertRule | T {
  const selects = (rule: AlertRule | T) =>
    'selector' in rule
      ? [
          rule.selector.namespace === target.namespace &&
            rule.selector.deployment === target.deployment,
          rule.selector.namespace === target.namespace && rule.selector.deployment === undefined,
          rule.selector.namespace === undefined,
        ]
      : [false, false, false];
  for (const level of [0, 1, 2]) {
    const rule = rules.find((candidate) => selects(candidate)[level]);
    if (rule) return rule;
  }
  return fallback;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new BadInput(`cannot read the rule file ${file} (${code})`);
  }
}

function alertOf(rules: RuleEntry[], alertNames: ReadonlySet<string>, file: string) {
  const alert = rules.find((rule) => rule.alert !== undefined && alertNames.has(rule.alert));
  if (!alert?.expr) throw new BadInput(`${file}: no alert named ${[...alertNames].join(' or ')}`);
  return { ...alert, expr: alert.expr };
}

function forOf(alert: RuleEntry, file: string): number {
  const forMs = alert.for === undefined ? 0 : parseDuration(alert.for);
  if (forMs === undefined) {
    throw new BadInput(`${file}: alert ${alert.alert} has an invalid for: "${alert.for}"`);
  }
  return forMs;
}

function rateWindowOf(rules: RuleEntry[], file: string): number {
  const window = captured(
    rules.find((rule) => rule.record === PER_POD)?.expr ?? '',
    RATE_WINDOW,
    1,
  );
  const ms = window === undefined ? undefined : parseDuration(window);
  if (ms === undefined)
    throw new BadInput(`${file}: no ${PER_POD} recording rule with a rate() window`);
  return ms;
}

/**
 * Reads the alert's threshold, `for:` and guards, and the per-pod recording rule's rate window,
 * from a rule file. The alert is the first one whose name is in ALERT_NAMES. A guard that is not
 * in the expression is not applied; a missing threshold is an error naming the file.
 */
export function readRuleFile(file: string, alertNames: ReadonlySet<string>): RuleParameters {
  const rules = rulesOf(readText(file), file);
  alertOf(rules, alertNames, file);
  const alerts = alertRulesOf(rules, alertNames, file);
  const main = alerts.find((rule) => rule.name === 'default') ?? alerts[0]!;
  return {
    source: shownPath(file),
    threshold: main.threshold,
    measure: main.measure,
    forMs: main.forMs,
    minPods: main.minPods,
    minAverage: main.minAverage,
    rateWindowMs: rateWindowOf(rules, file),
    rules: alerts,
  };
}

/** The alert rules of more rule files (overrides kept next to the main file), read the same way. */
export function readOverrideFiles(
  files: readonly string[],
  alertNames: ReadonlySet<string>,
): AlertRule[] {
  return files.flatMap((file) => alertRulesOf(rulesOf(readText(file), file), alertNames, file));
}

/** Without a rule file: the configuration's threshold, MIN_PODS and METRICS_WINDOW. */
export function ruleFromConfig(
  config: Readonly<Config>,
  flags: { forMs: number; minAverage: number },
): RuleParameters {
  return {
    source: 'the configuration (CPU_STDDEV_THRESHOLD, MIN_PODS, METRICS_WINDOW) and flags',
    threshold: config.threshold,
    measure: 'stddev',
    forMs: flags.forMs,
    minPods: config.minPods,
    minAverage: flags.minAverage,
    rateWindowMs: config.metricsWindowMs,
    rules: [],
  };
}
