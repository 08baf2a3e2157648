import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  parseThresholds,
  parseTime,
  timelineOf,
  backtestRequest,
} from '../../src/operator/backtest.js';
import { parseActiveWindow } from '../../src/core/window.js';
import { humanDuration } from '../../src/operator/backtest-format.js';
import { loadOperatorConfig } from '../../src/operator/command.js';
import { chunks, MAX_POINTS_PER_QUERY } from '../../src/operator/history.js';
import {
  DEFAULT_RULE_FILE,
  readOverrideFiles,
  readRuleFile,
  ruleFor,
} from '../../src/operator/rule-file.js';
import { repoRoot } from '../rules/tools.js';
import {
  notificationTimes,
  simulateRule,
  simulateThreshold,
  stepStats,
  type DeploymentHistory,
  type RuleModel,
  type ServiceModel,
} from '../../src/operator/simulate.js';

const MINUTE = 60_000;
const START = Date.parse('2026-11-20T00:00:00Z');

/**
 * A history at one step a minute. `pods` maps each pod to its CPU per minute: a number for
 * every minute, or a function of the minute returning undefined where it has no sample.
 */
function buildHistory(
  minutes: number,
  pods: Record<string, number | ((m: number) => number | undefined)>,
): DeploymentHistory {
  return {
    namespace: 'shop',
    deployment: 'web',
    timeline: { startMs: START, stepMs: MINUTE, length: minutes },
    pods: Object.entries(pods).map(([name, cpu]) => ({
      name,
      values: Float64Array.from({ length: minutes }, (_, m) => {
        const value = typeof cpu === 'number' ? cpu : cpu(m);
        return value === undefined ? NaN : value;
      }),
    })),
  };
}

/** One hot and one cold pod among three steady ones, from minute `from` to `to`. */
const imbalanced = (from: number, to: number) => ({
  hot: (m: number) => (m >= from && m < to ? 1.6 : 0.5),
  cold: (m: number) => (m >= from && m < to ? 0.05 : 0.5),
  a: 0.5,
  b: 0.52,
  c: 0.48,
});

const RULE: RuleModel = { threshold: 0.3, forMs: 10 * MINUTE, minPods: 3, minAverage: 0.05 };
const SERVICE: ServiceModel = {
  minPods: 3,
  minPodAgeMs: 10 * MINUTE,
  repeatIntervalMs: 20 * MINUTE,
  effect: {
    baseCooldownMs: 15 * MINUTE,
    maxCooldownMs: 24 * 60 * MINUTE,
    effectiveReduction: 0.3,
    ineffectiveLimit: 3,
  },
};
const at = (minute: number) => START + minute * MINUTE;

function rule(history: DeploymentHistory, overrides: Partial<RuleModel> = {}, fromMs = START) {
  return simulateRule(stepStats(history), history.timeline, { ...RULE, ...overrides }, fromMs);
}

describe('the alert rule, step by step', () => {
  it('fires once the condition has held for exactly for:, and resolves at the first step it does not', () => {
    const { episodes, aboveMs } = rule(buildHistory(120, imbalanced(30, 60)));

    expect(episodes).toEqual([{ firingAt: at(40), resolvedAt: at(60) }]);
    expect(aboveMs).toBe(30 * MINUTE);
  });

  it('does not fire for a condition shorter than for:', () => {
    expect(rule(buildHistory(120, imbalanced(30, 39))).episodes).toEqual([]);
  });

  it('starts pending over when the condition breaks for one step', () => {
    const pods = imbalanced(30, 60);
    const gap = {
      ...pods,
      hot: (m: number) => (m === 35 ? 0.5 : pods.hot(m)),
      cold: (m: number) => (m === 35 ? 0.5 : pods.cold(m)),
    };

    expect(rule(buildHistory(120, gap)).episodes).toEqual([
      { firingAt: at(46), resolvedAt: at(60) },
    ]);
  });

  it('leaves an episode firing at the end of the range unresolved', () => {
    expect(rule(buildHistory(60, imbalanced(30, 60))).episodes).toEqual([
      { firingAt: at(40), resolvedAt: undefined },
    ]);
  });

  it.each([
    ['fewer pods with samples than the count guard', { minPods: 6 }],
    ['an average load not above the average guard', { minAverage: 1 }],
    ['a stddev not above the threshold', { threshold: 0.6 }],
  ])('does not fire with %s', (_what, overrides) => {
    expect(rule(buildHistory(120, imbalanced(30, 60)), overrides).episodes).toEqual([]);
  });

  it('counts from --from only, but keeps the warm-up for the pending state', () => {
    const { episodes, aboveMs } = rule(buildHistory(120, imbalanced(30, 60)), {}, at(35));

    expect(episodes).toEqual([{ firingAt: at(40), resolvedAt: at(60) }]);
    expect(aboveMs).toBe(25 * MINUTE);
  });

  it('leaves out an episode that resolved before --from', () => {
    expect(rule(buildHistory(120, imbalanced(30, 60)), {}, at(70)).episodes).toEqual([]);
  });

  it('does not count a pod without a sample toward the count guard, as PromQL does not', () => {
    const five = imbalanced(30, 60);
    const sixth = { ...five, gone: (m: number) => (m < 20 ? 0.5 : undefined) };

    expect(rule(buildHistory(120, sixth), { minPods: 6 }).episodes).toEqual([]);
    expect(rule(buildHistory(120, { ...five, kept: 0.5 }), { minPods: 6 }).episodes).toHaveLength(
      1,
    );
  });
});

describe('Alertmanager notifications of an episode', () => {
  it('are sent when it starts firing and every repeat interval while it fires', () => {
    const times = notificationTimes({ firingAt: at(10), resolvedAt: at(55) }, 20 * MINUTE, {
      fromMs: START,
      endMs: at(100),
    });

    expect(times).toEqual([at(10), at(30), at(50)]);
  });

  it('before --from are not counted, and an unresolved episode runs to the end of the range', () => {
    const times = notificationTimes({ firingAt: at(10), resolvedAt: undefined }, 20 * MINUTE, {
      fromMs: at(20),
      endMs: at(70),
    });

    expect(times).toEqual([at(30), at(50), at(70)]);
  });
});

describe('the service at each notification', () => {
  const simulate = (history: DeploymentHistory, service: Partial<ServiceModel> = {}) =>
    simulateThreshold(
      history,
      stepStats(history),
      { rule: RULE, service: { ...SERVICE, ...service } },
      START,
    );

  it('removes the highest and the lowest pod at the first notification', () => {
    const result = simulate(buildHistory(120, imbalanced(30, 60)));

    expect(result.actions[0]).toMatchObject({ at: at(40), cooldownMs: 15 * MINUTE });
    expect(result.actions[0]!.pods.map((p) => [p.name, p.role, p.cpu])).toEqual([
      ['hot', 'highest', 1.6],
      ['cold', 'lowest', 0.05],
    ]);
  });

  it('when the pods sit in two camps, then the improvement gate skips every notification and the result says how many actions it removed', () => {
    const camps = Object.fromEntries(
      Array.from({ length: 12 }, (_, i) => [
        `p${i}`,
        (m: number) => (m >= 30 && m < 100 ? (i < 6 ? 1.0 : 0.1) : 0.5),
      ]),
    );
    const history = buildHistory(200, camps);

    const gated = simulate(history);
    const ungated = simulate(history, { minImprovement: 0 });

    expect(gated.actions).toEqual([]);
    expect(gated.skipped).toEqual({ 'no-improvement-expected': gated.notifications });
    expect(ungated.actions.length).toBeGreaterThan(0);
    expect(gated.removedByImprovementGate).toBe(ungated.actions.length);
    expect(ungated.removedByImprovementGate).toBe(0);
  });

  it('when one pod is hot among even ones, then the improvement gate removes no action', () => {
    expect(simulate(buildHistory(120, imbalanced(30, 60))).removedByImprovementGate).toBe(0);
  });

  it("when the rule carries its own minimum improvement, then it wins over the service's", () => {
    const history = buildHistory(120, imbalanced(30, 60));
    const result = simulateThreshold(
      history,
      stepStats(history),
      { rule: { ...RULE, minImprovement: 0.99999 }, service: { ...SERVICE, minImprovement: 0 } },
      START,
    );

    expect(result.actions).toEqual([]);
    expect(result.skipped).toEqual({ 'no-improvement-expected': result.notifications });
  });

  it('skips notifications inside the cooldown', () => {
    const result = simulate(buildHistory(200, imbalanced(30, 100)), {
      repeatIntervalMs: 10 * MINUTE,
    });

    // 40 acts (15m), 50 cooldown, 60 acts: ineffective, 30m until 90; 70, 80 cooldown; 90 acts.
    expect(result.actions.map((a) => (a.at - START) / MINUTE)).toEqual([40, 60, 90]);
    expect(result.skipped).toEqual({ cooldown: 3 });
  });

  it('judges an action effective when the alert stays away a cooldown: the backoff resets', () => {
    const pods = imbalanced(30, 60);
    const twice = {
      ...pods,
      hot: (m: number) => (m >= 120 && m < 150 ? 1.6 : pods.hot(m)),
      cold: (m: number) => (m >= 120 && m < 150 ? 0.05 : pods.cold(m)),
    };

    const result = simulate(buildHistory(200, twice));

    expect(result.actions.map((a) => [(a.at - START) / MINUTE, a.cooldownMs / MINUTE])).toEqual([
      [40, 15],
      [130, 15],
    ]);
  });

  it('skips notifications outside ACTIVE_WINDOW, as the pipeline does', () => {
    // START is a Friday at 00:00 UTC; the window opens at 00:50.
    const activeWindow = parseActiveWindow('Mon-Fri 00:50-23:00 UTC');

    const result = simulate(buildHistory(200, imbalanced(30, 100)), { activeWindow });

    expect(result.skipped['outside-window']).toBe(1);
    expect(result.actions.map((a) => (a.at - START) / MINUTE)).toEqual([60, 80]);
  });

  it('counts pods younger than MIN_POD_AGE out: too few eligible pods is a skip', () => {
    // Every pod appears at minute 20 and the alert fires at 30; with MIN_POD_AGE 45m the pods
    // are too young at the notifications of 30 and 50, old enough at 70.
    const late = Object.fromEntries(
      Object.entries(imbalanced(20, 100)).map(([name, cpu]) => [
        name,
        (m: number) => (m < 20 ? undefined : typeof cpu === 'number' ? cpu : cpu(m)),
      ]),
    );

    const result = simulate(buildHistory(120, late), { minPodAgeMs: 45 * MINUTE });

    expect(result.skipped['too-few-pods']).toBe(2);
    expect(result.actions.map((a) => (a.at - START) / MINUTE)).toEqual([70, 90]);
  });
});

describe('range queries', () => {
  it.each([
    ['a day at 1m', { startMs: START, stepMs: MINUTE, length: 1441 }],
    ['a week at 1m', { startMs: START, stepMs: MINUTE, length: 7 * 1440 + 1 }],
    ['a day at 5s', { startMs: START, stepMs: 5000, length: 17_281 }],
    ['one step', { startMs: START, stepMs: MINUTE, length: 1 }],
  ])(
    'cover %s in chunks with no gap, no overlap and at most 10,000 points each',
    (_what, timeline) => {
      const parts = chunks(timeline);
      const steps = parts.map(([start, end]) => (end - start) / timeline.stepMs + 1);

      expect(parts[0]![0]).toBe(timeline.startMs);
      expect(steps.reduce((a, b) => a + b, 0)).toBe(timeline.length);
      parts.slice(1).forEach(([start], i) => expect(start).toBe(parts[i]![1] + timeline.stepMs));
      expect(Math.max(...steps)).toBeLessThanOrEqual(MAX_POINTS_PER_QUERY);
    },
  );
});

describe('backtest flags and the rule file', () => {
  const now = new Date('2026-11-29T12:00:00Z');
  const config = loadOperatorConfig({ PROMETHEUS_URL: 'http://127.0.0.1:9090' });

  it.each([
    ['7d', Date.parse('2026-11-22T12:00:00Z')],
    ['90m', Date.parse('2026-11-29T10:30:00Z')],
    ['now', now.getTime()],
    ['2026-11-20T08:00:00Z', Date.parse('2026-11-20T08:00:00Z')],
    ['2026-11-20T08:00:00+01:00', Date.parse('2026-11-20T07:00:00Z')],
  ])('reads the time %s', (text, expected) => {
    expect(parseTime(text, now, 'from')).toBe(expected);
  });

  it('defaults the thresholds to a third below and above the rule', () => {
    expect(parseThresholds(undefined, 0.3)).toEqual([0.2, 0.3, 0.4]);
    expect(parseThresholds('0.4, 0.25,0.4', 0.3)).toEqual([0.25, 0.4]);
  });

  it("reads the threshold, for:, guards and rate window from the repository's rule file", () => {
    const read = readRuleFile(DEFAULT_RULE_FILE, new Set(['DeploymentCPUImbalance']));

    expect(read).toMatchObject({
      source: 'rules/pod-rebalancer.rules.yml',
      threshold: 0.3,
      measure: 'stddev',
      forMs: 10 * MINUTE,
      minPods: 3,
      minAverage: 0.05,
      rateWindowMs: 5 * MINUTE,
      rules: [expect.objectContaining({ name: 'default', selector: {} })],
    });
    // No pod_rebalancer_min_improvement in the shipped rule: the service's MIN_IMPROVEMENT decides.
    expect(read.rules[0]!.minImprovement).toBeUndefined();
  });

  it('reads each override of the examples with its selector and the policy its annotations carry', () => {
    const rules = readOverrideFiles(
      [join(repoRoot, 'rules/examples/overrides.rules.yml')],
      new Set(['DeploymentCPUImbalance']),
    );

    expect(rules).toEqual([
      expect.objectContaining({
        name: 'checkout-order-consumer',
        selector: { namespace: 'checkout', deployment: 'order-consumer' },
        threshold: 0.8,
        measure: 'stddev',
        minPods: 3,
        minAverage: 0.05,
      }),
      expect.objectContaining({
        name: 'namespace-batch',
        selector: { namespace: 'batch' },
        threshold: 0.5,
        measure: 'relative_stddev',
        minPods: 4,
        minAverage: 0.05,
      }),
    ]);
  });

  it.each([
    ['checkout', 'order-consumer', 'checkout-order-consumer'],
    ['checkout', 'cart', 'default'],
    ['batch', 'small', 'namespace-batch'],
    ['payments', 'api', 'default'],
  ])(
    "for %s/%s the rule that decides is %s (its own, else its namespace's, else the default)",
    (namespace, deployment, name) => {
      const alertNames = new Set(['DeploymentCPUImbalance']);
      const rules = [
        ...readRuleFile(DEFAULT_RULE_FILE, alertNames).rules,
        ...readOverrideFiles([join(repoRoot, 'rules/examples/overrides.rules.yml')], alertNames),
      ];

      expect(ruleFor(rules, { namespace, deployment }, undefined as never).name).toBe(name);
    },
  );

  it('fetches a warm-up of for: or MIN_POD_AGE before --from, whichever is longer', () => {
    const request = backtestRequest(['--from', '1d', '--to', 'now', '--for', '30m'], config, now);

    expect(timelineOf(request)).toEqual({
      startMs: Date.parse('2026-11-28T11:30:00Z'),
      stepMs: MINUTE,
      length: 24 * 60 + 30 + 1,
    });
  });

  it('takes --for and --min-average over the rule file', () => {
    const request = backtestRequest(['--for', '5m', '--min-average', '0'], config, now);

    expect(request.rule).toMatchObject({ forMs: 5 * MINUTE, minAverage: 0, threshold: 0.3 });
  });

  it.each([
    [0, '0m'],
    [45 * MINUTE, '45m'],
    [125 * MINUTE, '2h05m'],
    [26 * 60 * MINUTE, '26h00m'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});
