import { describe, expect, it } from '@jest/globals';
import {
  PROMTOOL,
  expectSuccess,
  listRuleFiles,
  listRuleTestFiles,
  readRuleGroups,
  readYaml,
  runTool,
} from './tools.js';

interface PromtoolTestFile {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

/** Alertnames that some promtool test in rules/tests/ expects to be firing. */
function alertsExpectedToFire(): Set<string> {
  const firing = listRuleTestFiles()
    .flatMap((file) => readYaml<PromtoolTestFile>(file).tests)
    .flatMap((group) => group.alert_rule_test ?? [])
    .filter((test) => test.exp_alerts.length > 0);
  return new Set(firing.map((test) => test.alertname));
}

describe('the Prometheus rules in rules/', () => {
  it('pass promtool check rules', () => {
    const files = listRuleFiles();
    expect(files).toEqual(
      expect.arrayContaining([
        'rules/pod-rebalancer.rules.yml',
        'rules/pod-rebalancer-self.rules.yml',
      ]),
    );

    expectSuccess(runTool(PROMTOOL, ['check', 'rules', ...files]));
  });

  it('include override examples that pass promtool check rules too', () => {
    expectSuccess(runTool(PROMTOOL, ['check', 'rules', 'rules/examples/overrides.rules.yml']));
  });

  it('pass every promtool unit test in rules/tests/', () => {
    const files = listRuleTestFiles();
    expect(files.length).toBeGreaterThan(0);

    const run = runTool(PROMTOOL, ['test', 'rules', ...files]);

    expectSuccess(run);
    for (const file of files) expect(run.output).toContain(`Unit Testing:  ${file}`);
  });

  it('have, for every alert, a promtool test that expects it to fire', () => {
    const alerts = listRuleFiles()
      .flatMap(readRuleGroups)
      .flatMap((group) => group.rules)
      .flatMap((rule) => (rule.alert ? [rule.alert] : []));
    expect(alerts.length).toBeGreaterThan(0);

    const tested = alertsExpectedToFire();

    expect(alerts.filter((alert) => !tested.has(alert))).toEqual([]);
  });
});

describe('when promtool is not installed', () => {
  it('the rule tests fail naming the Debian package to install, instead of skipping', () => {
    expect(() => runTool(PROMTOOL, ['--version'], { PATH: '/nonexistent' })).toThrow(
      'promtool is not on PATH. Install the Debian package `prometheus`',
    );
  });
});
