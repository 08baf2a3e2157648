import { describe, expect, it } from '@jest/globals';
import { decide } from '../../src/core/decide.js';
import { measureOf, policyFromAnnotations, type AlertPolicy } from '../../src/core/policy.js';
import { buildPod, samplesOf } from '../support/builders.js';

const DEFAULTS = { threshold: 0.3, minPods: 3, minImprovement: 0.1 };
const CONFIG = 'configuration';
const ALERT = 'alert annotation';

describe('policyFromAnnotations', () => {
  type Values = Omit<AlertPolicy, 'source' | 'rotation'>;
  type Sources = Omit<AlertPolicy['source'], 'rotation'>;
  it.each<[string, Record<string, string>, Values, Sources]>([
    [
      'no annotations: the configuration, stddev',
      {},
      { threshold: 0.3, measure: 'stddev', minPods: 3, minImprovement: 0.1 },
      { threshold: CONFIG, measure: CONFIG, minPods: CONFIG, minImprovement: CONFIG },
    ],
    [
      'all three annotations',
      {
        pod_rebalancer_threshold: '0.8',
        pod_rebalancer_measure: 'stddev',
        pod_rebalancer_min_pods: '5',
      },
      { threshold: 0.8, measure: 'stddev', minPods: 5, minImprovement: 0.1 },
      { threshold: ALERT, measure: ALERT, minPods: ALERT, minImprovement: CONFIG },
    ],
    [
      'a relative threshold',
      { pod_rebalancer_threshold: '0.5', pod_rebalancer_measure: 'relative_stddev' },
      { threshold: 0.5, measure: 'relative_stddev', minPods: 3, minImprovement: 0.1 },
      { threshold: ALERT, measure: ALERT, minPods: CONFIG, minImprovement: CONFIG },
    ],
    [
      'only the threshold (measure and min pods from the configuration)',
      { pod_rebalancer_threshold: '1.25' },
      { threshold: 1.25, measure: 'stddev', minPods: 3, minImprovement: 0.1 },
      { threshold: ALERT, measure: CONFIG, minPods: CONFIG, minImprovement: CONFIG },
    ],
    [
      'whitespace around values, as a YAML block scalar leaves it',
      { pod_rebalancer_threshold: ' 0.4\n', pod_rebalancer_min_pods: '4 ' },
      { threshold: 0.4, measure: 'stddev', minPods: 4, minImprovement: 0.1 },
      { threshold: ALERT, measure: CONFIG, minPods: ALERT, minImprovement: CONFIG },
    ],
    [
      'unrelated annotations are ignored',
      { summary: 'x', pod_rebalancer_guard: 'up == 0' },
      { threshold: 0.3, measure: 'stddev', minPods: 3, minImprovement: 0.1 },
      { threshold: CONFIG, measure: CONFIG, minPods: CONFIG, minImprovement: CONFIG },
    ],
    [
      'a minimum improvement as a percentage',
      { pod_rebalancer_min_improvement: '25%' },
      { threshold: 0.3, measure: 'stddev', minPods: 3, minImprovement: 0.25 },
      { threshold: CONFIG, measure: CONFIG, minPods: CONFIG, minImprovement: ALERT },
    ],
    [
      'a minimum improvement as a share',
      { pod_rebalancer_min_improvement: '0.05' },
      { threshold: 0.3, measure: 'stddev', minPods: 3, minImprovement: 0.05 },
      { threshold: CONFIG, measure: CONFIG, minPods: CONFIG, minImprovement: ALERT },
    ],
    [
      'no gate for this rule',
      { pod_rebalancer_min_improvement: '0%' },
      { threshold: 0.3, measure: 'stddev', minPods: 3, minImprovement: 0 },
      { threshold: CONFIG, measure: CONFIG, minPods: CONFIG, minImprovement: ALERT },
    ],
  ])('when %s, then that policy with its sources', (_name, annotations, values, source) => {
    // No rotation annotation in these rows: the default, `together`, from the configuration.
    expect(policyFromAnnotations(annotations, DEFAULTS)).toEqual({
      ok: true,
      policy: { rotation: 'together', ...values, source: { rotation: CONFIG, ...source } },
    });
  });

  it.each([
    ['no annotation and ROTATION unset', {}, undefined, 'together', CONFIG],
    ['no annotation and ROTATION=one-by-one', {}, 'one-by-one', 'one-by-one', CONFIG],
    [
      'the annotation one-by-one',
      { pod_rebalancer_rotation: 'one-by-one' },
      undefined,
      'one-by-one',
      ALERT,
    ],
    [
      'the annotation together over ROTATION',
      { pod_rebalancer_rotation: ' together\n' },
      'one-by-one',
      'together',
      ALERT,
    ],
  ] as const)(
    'when %s, then that rotation with its source',
    (_name, annotations, configured, rotation, source) => {
      const result = policyFromAnnotations(annotations, { ...DEFAULTS, rotation: configured });

      expect(result).toMatchObject({
        ok: true,
        policy: { rotation, source: { rotation: source } },
      });
    },
  );

  it.each([
    ['a threshold that is not a number', { pod_rebalancer_threshold: 'high' }, /threshold "high"/],
    ['an empty threshold', { pod_rebalancer_threshold: '' }, /threshold ""/],
    ['a zero threshold', { pod_rebalancer_threshold: '0' }, /not a positive number/],
    ['a negative threshold', { pod_rebalancer_threshold: '-0.3' }, /not a positive number/],
    ['an infinite threshold', { pod_rebalancer_threshold: 'Infinity' }, /not a positive number/],
    [
      'an unknown measure',
      { pod_rebalancer_measure: 'variance' },
      /measure "variance" is not one of stddev, relative_stddev/,
    ],
    ['min pods below 2', { pod_rebalancer_min_pods: '1' }, /min_pods "1"/],
    ['fractional min pods', { pod_rebalancer_min_pods: '2.5' }, /min_pods "2.5"/],
    [
      'a bare minimum improvement of 10 (10% or ten times?)',
      { pod_rebalancer_min_improvement: '10' },
      /min_improvement "10": expected a percentage/,
    ],
    [
      'a minimum improvement of 100% (no action could promise it)',
      { pod_rebalancer_min_improvement: '100%' },
      /min_improvement "100%"/,
    ],
    ['a negative minimum improvement', { pod_rebalancer_min_improvement: '-5%' }, /"-5%"/],
    ['a minimum improvement in words', { pod_rebalancer_min_improvement: 'ten' }, /"ten"/],
    [
      'an unknown rotation',
      { pod_rebalancer_rotation: 'one_by_one' },
      /rotation "one_by_one" is not one of together, one-by-one/,
    ],
    [
      'a relative measure without its own threshold (the configured one is in cores)',
      { pod_rebalancer_measure: 'relative_stddev' },
      /needs pod_rebalancer_threshold/,
    ],
  ])(
    'when the rule carries %s, then invalid-policy naming the value',
    (_name, annotations, detail) => {
      const result = policyFromAnnotations(annotations, DEFAULTS);

      expect(result).toEqual({
        ok: false,
        reason: 'invalid-policy',
        detail: expect.stringMatching(detail),
      });
    },
  );

  it('when several values are wrong, then the detail names each of them', () => {
    const result = policyFromAnnotations(
      { pod_rebalancer_threshold: 'x', pod_rebalancer_min_pods: 'y' },
      DEFAULTS,
    );

    expect(result.ok).toBe(false);
    expect(!result.ok && result.detail).toMatch(/threshold "x".*min_pods "y"/);
  });
});

describe('measureOf', () => {
  it.each([
    ['stddev', { mean: 2, stddev: 0.5 }, 0.5],
    ['relative_stddev', { mean: 2, stddev: 0.5 }, 0.25],
    ['relative_stddev', { mean: 0, stddev: 0 }, 0],
  ] as const)('%s of %j is %d', (measure, stats, expected) => {
    expect(measureOf(measure, stats)).toBe(expected);
  });
});

describe('decide with the alert policy', () => {
  const NOW = new Date('2026-11-30T12:00:00.000Z');
  // 8-core pods: stddev 0.5 cores is above 0.3 cores but only 6 % of the 8-core mean.
  const pods = ['a', 'b', 'c'].map((name) => buildPod({ name }));
  const samples = samplesOf({ a: 8.6, b: 8, c: 7.4 });
  const base = { minPods: 3, minPodAgeMs: 0 };

  it('when the measure is stddev, then an 0.49-core spread of 8-core pods is above 0.3 cores', () => {
    expect(decide(pods, samples, { ...base, threshold: 0.3, measure: 'stddev' }, NOW).act).toBe(
      true,
    );
  });

  it('when the measure is relative_stddev, then the same spread (6 %) is below a 0.1 threshold', () => {
    const decision = decide(
      pods,
      samples,
      { ...base, threshold: 0.1, measure: 'relative_stddev' },
      NOW,
    );

    expect(decision).toMatchObject({
      act: false,
      reason: 'below-threshold',
      detail: expect.stringMatching(/relative stddev 0\.061 is not above 0\.1/),
    });
  });

  it('when the alert asks for more pods than there are, then too-few-pods', () => {
    const decision = decide(pods, samples, { ...base, minPods: 4, threshold: 0.3 }, NOW);

    expect(decision).toMatchObject({ act: false, reason: 'too-few-pods' });
  });
});
