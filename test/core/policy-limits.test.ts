import { describe, expect, it } from '@jest/globals';
import { gatePolicyLimits, parsePolicyLimits } from '../../src/core/policy-limits.js';
import type { AlertPolicy } from '../../src/core/policy.js';

const policy = (threshold: number, minPods: number, minImprovement = 0.1): AlertPolicy => ({
  threshold,
  measure: 'stddev',
  minPods,
  minImprovement,
  rotation: 'together',
  source: {
    threshold: 'alert annotation',
    measure: 'configuration',
    minPods: 'alert annotation',
    minImprovement: 'configuration',
    rotation: 'configuration',
  },
});
const LIMITS = parsePolicyLimits('threshold>=0.05, min_pods>=3, min_improvement>=0.05');

describe('POLICY_LIMITS', () => {
  it('parses NAME>=NUMBER and NAME<=NUMBER, comma-separated', () => {
    expect(parsePolicyLimits('threshold>=0.05,min_pods>=3,threshold<=2')).toEqual([
      { name: 'threshold', op: '>=', value: 0.05 },
      { name: 'min_pods', op: '>=', value: 3 },
      { name: 'threshold', op: '<=', value: 2 },
    ]);
  });

  it.each(['threshold>0.05', 'measure>=1', 'threshold>=x', '', 'min_pods>=3,,bogus'])(
    'refuses %p with what it expects',
    (text) => {
      expect(() => parsePolicyLimits(text)).toThrow(/expected/);
    },
  );

  it.each<[string, AlertPolicy, string | undefined]>([
    ['within both', policy(0.3, 3), undefined],
    ['on the bound', policy(0.05, 3), undefined],
    [
      'a threshold below it',
      policy(0.000001, 3),
      'threshold 0.000001, outside POLICY_LIMITS threshold>=0.05',
    ],
    ['too few pods', policy(0.3, 2), 'min_pods 2, outside POLICY_LIMITS min_pods>=3'],
    [
      'no improvement gate',
      policy(0.3, 3, 0),
      'min_improvement 0, outside POLICY_LIMITS min_improvement>=0.05',
    ],
  ])('when the rule asks for a policy %s, then %p', (_case, p, detail) => {
    const gate = gatePolicyLimits(p, LIMITS);

    if (detail === undefined) expect(gate).toBeUndefined();
    else
      expect(gate).toEqual({ reason: 'invalid-policy', detail: expect.stringContaining(detail) });
  });
});
