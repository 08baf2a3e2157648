import { describe, expect, it } from '@jest/globals';
import { podCpuQuery } from '../../src/adapters/prometheus.js';
import { CPU_METRIC, cpuSeriesMatchers, cpuSeriesSelector } from '../../src/core/cpu-series.js';
import { perPodCpuExpression } from '../../src/operator/history.js';
import { readRuleGroups } from './tools.js';

// Which CPU series count is said once, in src/core/cpu-series.ts. The recording rule the alert
// is built on must select exactly those series, or the alert and the service's re-check measure
// different things (e.g. the rule counting /metrics/resource and cAdvisor twice, the service once).

const RULE_FILE = 'rules/pod-rebalancer.rules.yml';
const RECORDING = 'namespace_deployment_pod:cpu_usage:rate';

function selectorsIn(expr: string): string[] {
  const pattern = new RegExp(`${CPU_METRIC}\\{([^}]*)\\}`, 'g');
  return [...expr.matchAll(pattern)].map((m) =>
    m[1]!
      .split(',')
      .map((matcher) => matcher.trim())
      .filter(Boolean)
      .join(', '),
  );
}

describe('the CPU series selector: one place, used everywhere', () => {
  it('when the recording rule in rules/ reads CPU, then it uses exactly the service matchers', () => {
    const rule = readRuleGroups(RULE_FILE)
      .flatMap((group) => group.rules)
      .find((candidate) => candidate.record === RECORDING);

    expect(rule).toBeDefined();
    const selectors = selectorsIn(rule!.expr);
    expect(selectors).toEqual([cpuSeriesMatchers().join(', ')]);
  });

  it('when the service verifies or backtests, then its queries carry the same selector', () => {
    const series = { extraMatchers: ['job="kubelet"'] };
    const verification = podCpuQuery(
      { namespace: 'shop', pods: ['web-1'], windowMs: 300_000 },
      series,
    );
    const backtest = perPodCpuExpression({ namespace: 'shop', deployment: 'web' }, 300_000, series);

    for (const query of [verification, backtest]) {
      expect(selectorsIn(query)[0]).toMatch(
        new RegExp(
          `${cpuSeriesMatchers(series)
            .join(', ')
            .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
        ),
      );
    }
    expect(cpuSeriesSelector(series)).toContain('job="kubelet"');
  });
});
