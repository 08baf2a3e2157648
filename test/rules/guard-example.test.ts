import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { GUARD_ANNOTATION } from '../../src/core/guard.js';
import {
  PROMTOOL,
  type RuleGroup,
  expectSuccess,
  listRuleTestFiles,
  readRuleGroups,
  readYaml,
  repoRoot,
  runTool,
} from './tools.js';

// rules/examples/ holds rules to copy, not to deploy: they are checked and tested like the
// rules in rules/, and kept out of the generated PrometheusRule.

const EXAMPLES = 'rules/examples';

function exampleRuleFiles(): string[] {
  return readdirSync(join(repoRoot, EXAMPLES))
    .filter((name) => name.endsWith('.yml'))
    .sort()
    .map((name) => `${EXAMPLES}/${name}`);
}

interface PromtoolTestFile {
  rule_files: string[];
  tests: {
    alert_rule_test?: {
      alertname: string;
      exp_alerts: { exp_annotations?: Record<string, string> }[];
    }[];
    promql_expr_test?: { expr: string }[];
  }[];
}

/** The promtool test files whose rule_files name an example. */
function exampleTests(): { file: string; content: PromtoolTestFile }[] {
  return listRuleTestFiles()
    .map((file) => ({ file, content: readYaml<PromtoolTestFile>(file) }))
    .filter(({ content }) => content.rule_files.some((path) => path.includes('examples/')));
}

describe('the example rules in rules/examples/', () => {
  it('include the per-Deployment guard example, and pass promtool check rules', () => {
    const files = exampleRuleFiles();
    expect(files).toContain(`${EXAMPLES}/consumer-lag-guard.rules.yml`);

    expectSuccess(runTool(PROMTOOL, ['check', 'rules', ...files]));
  });

  it('template the guard annotation with the Deployment the alert is about', () => {
    const guards = exampleRuleFiles()
      .flatMap(readRuleGroups)
      .flatMap((group) => group.rules)
      .flatMap((rule) => rule.annotations?.[GUARD_ANNOTATION] ?? []);

    expect(guards.length).toBeGreaterThan(0);
    for (const guard of guards) expect(guard).toContain('{{ $labels.deployment }}');
  });

  it('have, for every alert, a promtool test that expects it to fire with its guard rendered', () => {
    const alerts = exampleRuleFiles()
      .flatMap(readRuleGroups)
      .flatMap((group) => group.rules)
      .flatMap((rule) => (rule.alert ? [rule.alert] : []));
    const firing = exampleTests()
      .flatMap(({ content }) => content.tests)
      .flatMap((test) => test.alert_rule_test ?? [])
      .filter((test) => test.exp_alerts.some((a) => a.exp_annotations?.[GUARD_ANNOTATION]));

    expect(alerts.length).toBeGreaterThan(0);
    expect(alerts.filter((alert) => !firing.some((t) => t.alertname === alert))).toEqual([]);
  });

  it('evaluate, in the same promtool test file, every guard the alerts are expected to carry', () => {
    for (const { file, content } of exampleTests()) {
      const rendered = content.tests
        .flatMap((test) => test.alert_rule_test ?? [])
        .flatMap((test) => test.exp_alerts)
        .flatMap((alert) => alert.exp_annotations?.[GUARD_ANNOTATION] ?? []);
      const evaluated = new Set(
        content.tests.flatMap((test) => test.promql_expr_test ?? []).map((test) => test.expr),
      );

      expect({ file, missing: rendered.filter((expr) => !evaluated.has(expr)) }).toEqual({
        file,
        missing: [],
      });
      expect(rendered.length).toBeGreaterThan(0);
    }
  });

  it('are not deployed: the generated PrometheusRule holds none of their groups', () => {
    const deployed = readYaml<{ spec: { groups: RuleGroup[] } }>(
      'deploy/base/prometheus-rule.yaml',
    ).spec.groups.map((group) => group.name);
    const examples = exampleRuleFiles()
      .flatMap(readRuleGroups)
      .map((group) => group.name);

    expect(examples.length).toBeGreaterThan(0);
    expect(examples.filter((name) => deployed.includes(name))).toEqual([]);
  });
});
