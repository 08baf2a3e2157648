import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { DEFAULT_CPU_STDDEV_THRESHOLD, DEFAULT_MIN_PODS, SETTINGS } from '../../src/config.js';
import { parseDuration } from '../../src/core/duration.js';
import { readRuleGroups, repoRoot } from './tools.js';

// The rule decides when Alertmanager calls the service; the service re-checks with its own
// defaults. If the two disagreed, every alert would end in `below-threshold` (service stricter)
// or the service would act on spreads the rule never reports (service looser).

const RULE_FILE = 'rules/pod-rebalancer.rules.yml';
const RECORDING = 'namespace_deployment_pod:cpu_usage:rate';

function imbalanceRule() {
  const rules = readRuleGroups(RULE_FILE).flatMap((group) => group.rules);
  const rule = rules.find((candidate) => candidate.alert === 'DeploymentCPUImbalance');
  if (!rule) throw new Error(`${RULE_FILE} has no DeploymentCPUImbalance alert`);
  return rule;
}

function recordingRule() {
  const rules = readRuleGroups(RULE_FILE).flatMap((group) => group.rules);
  const rule = rules.find((candidate) => candidate.record === RECORDING);
  if (!rule) throw new Error(`${RULE_FILE} has no ${RECORDING} recording rule`);
  return rule;
}

/** The number a pattern captures in an expression, failing with the pattern when it is absent. */
function capture(expr: string, pattern: RegExp): string {
  const match = pattern.exec(expr);
  if (!match?.[1]) throw new Error(`expected ${pattern} in the expression:\n${expr}`);
  return match[1];
}

describe('the DeploymentCPUImbalance rule and the service defaults', () => {
  it('use the same CPU standard deviation threshold (cores)', () => {
    const threshold = capture(
      imbalanceRule().expr,
      /stddev by \(namespace, deployment\) \(namespace_deployment_pod:cpu_usage:rate\)\s*>\s*([0-9.]+)/,
    );

    expect(Number(threshold)).toBe(DEFAULT_CPU_STDDEV_THRESHOLD);
  });

  it('use the same minimum number of pods', () => {
    const minPods = capture(
      imbalanceRule().expr,
      /count by \(namespace, deployment\) \(namespace_deployment_pod:cpu_usage:rate\)\s*>=\s*(\d+)/,
    );

    expect(Number(minPods)).toBe(DEFAULT_MIN_PODS);
  });

  it('measure CPU over the same rate() window', () => {
    const window = capture(
      recordingRule().expr,
      /rate\(container_cpu_usage_seconds_total\{[^}]*\}\[(\w+)\]\)/,
    );

    expect(parseDuration(window)).toBe(parseDuration(SETTINGS.METRICS_WINDOW.default ?? ''));
  });

  it('write the threshold in one place only: the alert expression', () => {
    const text = readFileSync(join(repoRoot, RULE_FILE), 'utf8');
    const literal = new RegExp(
      `(?<![\\d.])${String(DEFAULT_CPU_STDDEV_THRESHOLD).replace('.', '\\.')}(?!\\d)`,
      'g',
    );

    expect(text.match(literal)).toHaveLength(1);
    expect(imbalanceRule().expr).toMatch(literal);
  });
});
