import { readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadYaml } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import { parseDuration } from '../core/duration.js';
import { BadInput } from './command.js';
import type { RuleModel } from './simulate.js';

/** The rule file in this checkout (dist/operator → rules/), the one people tune in Git. */
export const DEFAULT_RULE_FILE = fileURLToPath(
  new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url),
);

const PER_POD = 'namespace_deployment_pod:cpu_usage:rate';
const GUARD = String.raw`by \(namespace, deployment\) \(namespace_deployment_pod:cpu_usage:rate\)\s*`;
const THRESHOLD = new RegExp(String.raw`stddev ${GUARD}>\s*([0-9.]+)`);
const MIN_PODS = new RegExp(String.raw`count ${GUARD}>=\s*(\d+)`);
const MIN_AVERAGE = new RegExp(String.raw`avg ${GUARD}>\s*([0-9.]+)`);
const RATE_WINDOW = /rate\(container_cpu_usage_seconds_total\{[^}]*\}\[(\w+)\]\)/;

/** What the backtest takes from the rule file: the alert's parameters and the rate window. */
export interface RuleParameters extends RuleModel {
  /** The file they came from, or a sentence saying they came from the configuration. */
  source: string;
  rateWindowMs: number;
}

interface RuleEntry {
  alert?: string;
  record?: string;
  expr?: string;
  for?: string;
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

function captured(expr: string, pattern: RegExp): string | undefined {
  return pattern.exec(expr.replace(/\s+/g, ' '))?.[1];
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
  const window = captured(rules.find((rule) => rule.record === PER_POD)?.expr ?? '', RATE_WINDOW);
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
  const alert = alertOf(rules, alertNames, file);
  const threshold = captured(alert.expr, THRESHOLD);
  if (threshold === undefined) {
    throw new BadInput(
      `${file}: alert ${alert.alert} has no "stddev by (namespace, deployment) (${PER_POD}) > X"`,
    );
  }
  return {
    source: shownPath(file),
    threshold: Number(threshold),
    forMs: forOf(alert, file),
    minPods: Number(captured(alert.expr, MIN_PODS) ?? 0),
    minAverage: Number(captured(alert.expr, MIN_AVERAGE) ?? -Infinity),
    rateWindowMs: rateWindowOf(rules, file),
  };
}

/** Without a rule file: the configuration's threshold, MIN_PODS and METRICS_WINDOW. */
export function ruleFromConfig(
  config: Readonly<Config>,
  flags: { forMs: number; minAverage: number },
): RuleParameters {
  return {
    source: 'the configuration (CPU_STDDEV_THRESHOLD, MIN_PODS, METRICS_WINDOW) and flags',
    threshold: config.threshold,
    forMs: flags.forMs,
    minPods: config.minPods,
    minAverage: flags.minAverage,
    rateWindowMs: config.metricsWindowMs,
  };
}
