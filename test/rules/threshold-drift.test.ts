import { describe, expect, it } from '@jest/globals';
import { SETTINGS } from '../../src/config.js';
import { parseDuration } from '../../src/core/duration.js';
import { policyFromAnnotations, POLICY_ANNOTATIONS } from '../../src/core/policy.js';
import { expressionPolicy } from '../../src/operator/rule-file.js';
import { listRuleFiles, readRuleGroups, type Rule } from './tools.js';

// The rule decides when Alertmanager calls the service, and its annotations tell the service
// what to verify against. Inside one rule the two must say the same: if the expression fired at
// 0.3 and the annotation said 0.8, every alert would end in below-threshold (or the service
// would act on spreads the rule's author never meant).

const EXAMPLES = ['rules/examples/overrides.rules.yml'];
const RULE_FILES = [...listRuleFiles(), ...EXAMPLES];
const RECORDING = 'namespace_deployment_pod:cpu_usage:rate';
const ALERT = 'DeploymentCPUImbalance';

const rulesOf = (file: string) => readRuleGroups(file).flatMap((group) => group.rules);
const alerts = RULE_FILES.flatMap((file) =>
  rulesOf(file)
    .filter((rule) => rule.alert === ALERT)
    .map((rule): [string, Rule] => [
      `${file}: ${rule.labels?.pod_rebalancer_rule ?? 'default'}`,
      rule,
    ]),
);

/** The namespace and Deployment an override's expression selects. */
function selectorOf(expr: string): { namespace?: string; deployment?: string } {
  const selector = /cpu_usage:rate\{([^}]*)\}/.exec(expr)?.[1] ?? '';
  const label = (name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(selector)?.[1];
  return { namespace: label('namespace'), deployment: label('deployment') };
}

describe.each(alerts)('the %s rule', (_name, rule) => {
  const annotations = rule.annotations ?? {};
  const written = expressionPolicy(rule.expr);

  it('carries the policy its expression is bound to in annotations the service can parse', () => {
    // The rest (min_improvement, rotation) is the service's configuration unless a rule differs.
    const { threshold, measure, minPods } = POLICY_ANNOTATIONS;
    for (const name of [threshold, measure, minPods]) expect(annotations[name]).toBeDefined();
    expect(policyFromAnnotations(annotations, { threshold: 1, minPods: 2 })).toMatchObject({
      ok: true,
    });
  });

  it('has the same threshold and measure in its expression and its annotations', () => {
    expect(written.threshold).toBeDefined();
    expect(Number(annotations[POLICY_ANNOTATIONS.threshold])).toBe(written.threshold);
    expect(annotations[POLICY_ANNOTATIONS.measure]).toBe(written.measure);
  });

  it('has the same minimum number of pods in its expression and its annotations', () => {
    expect(written.minPods).toBeDefined();
    expect(Number(annotations[POLICY_ANNOTATIONS.minPods])).toBe(written.minPods);
  });
});

describe('overrides never double an alert', () => {
  const markers = RULE_FILES.flatMap(rulesOf).filter((rule) =>
    rule.record?.startsWith('pod_rebalancer:'),
  );
  const marked = (record: string, labels: Record<string, string | undefined>) =>
    markers.some(
      (m) =>
        m.record === record &&
        Object.entries(labels).every(([key, value]) => m.labels?.[key] === value),
    );

  it.each(alerts.filter(([, rule]) => selectorOf(rule.expr).namespace !== undefined))(
    '%s is marked as an override, so the broader rules leave what it selects alone',
    (_name, rule) => {
      const { namespace, deployment } = selectorOf(rule.expr);

      if (deployment !== undefined) {
        expect(marked('pod_rebalancer:deployment_override', { namespace, deployment })).toBe(true);
      } else {
        expect(marked('pod_rebalancer:namespace_override', { namespace })).toBe(true);
        expect(rule.expr).toMatch(
          /unless on \(namespace, deployment\) pod_rebalancer:deployment_override/,
        );
      }
    },
  );

  it('the default rule leaves every Deployment and namespace override alone', () => {
    const [, defaultRule] = alerts.find(([name]) => name.endsWith(': default'))!;

    expect(defaultRule.expr).toMatch(
      /unless on \(namespace, deployment\) pod_rebalancer:deployment_override/,
    );
    expect(defaultRule.expr).toMatch(/unless on \(namespace\) pod_rebalancer:namespace_override/);
  });
});

describe('the verification query and the recording rule', () => {
  it('measure CPU over the same rate() window (METRICS_WINDOW)', () => {
    const recording = rulesOf('rules/pod-rebalancer.rules.yml').find((r) => r.record === RECORDING);
    const window = /rate\(container_cpu_usage_seconds_total\{[^}]*\}\[(\w+)\]\)/.exec(
      recording?.expr ?? '',
    )?.[1];

    expect(parseDuration(window ?? '')).toBe(parseDuration(SETTINGS.METRICS_WINDOW.default ?? ''));
  });
});
