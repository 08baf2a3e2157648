import { describe, expect, it } from '@jest/globals';
import { coverageGap } from '../../src/core/coverage.js';
import { decide } from '../../src/core/decide.js';
import type { Decision, Policy } from '../../src/core/types.js';
import { buildPod, samplesOf } from '../support/builders.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const POLICY: Policy = { threshold: 0.3, minPods: 3, minPodAgeMs: 10 * 60_000 };

function pods(names: readonly string[]) {
  return names.map((name) => buildPod({ name }));
}

function skipOf(decision: Decision): { reason: string; detail: string } {
  if (decision.act) throw new Error('expected a skip, got an action');
  return decision;
}

describe('coverageGap: every pod that counts must have a sample (MIN_SAMPLE_COVERAGE)', () => {
  it.each([
    ['all 5 pods have a sample', 5, 5, undefined, undefined],
    ['4 of 5 have one, with the default 1', 5, 4, undefined, 'incomplete-metrics'],
    ['4 of 5 have one, MIN_SAMPLE_COVERAGE 0.8', 5, 4, 0.8, undefined],
    ['3 of 5 have one, MIN_SAMPLE_COVERAGE 0.8', 5, 3, 0.8, 'incomplete-metrics'],
    ['9 of 10 have one, MIN_SAMPLE_COVERAGE 0.9 (no rounding trap)', 10, 9, 0.9, undefined],
    ['none of 3 has one, MIN_SAMPLE_COVERAGE 0.01', 3, 0, 0.01, 'incomplete-metrics'],
    ['no pod counts at all (nothing to cover)', 0, 0, undefined, undefined],
  ])('when %s, then %s', (_case, total, sampled, coverage, expected) => {
    const names = Array.from({ length: total }, (_, i) => `api-${i}`);
    const samples = samplesOf(Object.fromEntries(names.slice(0, sampled).map((n) => [n, 0.5])));

    expect(coverageGap(names, samples, coverage)?.reason).toBe(expected);
  });

  it('when pods lack a sample, then the detail names each of them, sorted', () => {
    const gap = coverageGap(['api-c', 'api-a', 'api-b'], samplesOf({ 'api-a': 1 }));

    expect(gap?.detail).toBe(
      '2 of 3 pods have no CPU sample (api-b, api-c); MIN_SAMPLE_COVERAGE is 1',
    );
  });

  it('when many pods lack a sample, then the detail names ten and counts the rest', () => {
    const names = Array.from({ length: 15 }, (_, i) => `p${String(i).padStart(2, '0')}`);

    expect(coverageGap(names, samplesOf({}))?.detail).toMatch(/\(p00, .*, p09 and 5 more\)/);
  });

  it('when a sample is NaN, Infinity or negative, then it counts as missing', () => {
    const samples = new Map([
      ['a', NaN],
      ['b', Infinity],
      ['c', -1],
      ['d', 0],
    ]);

    expect(coverageGap(['a', 'b', 'c', 'd'], samples)?.detail).toMatch(/^3 of 4 .*\(a, b, c\)/);
  });
});

describe('decide: the coverage gate', () => {
  it('when the hottest pod has no sample (its scrape timed out), then nothing is chosen and the skip names it', () => {
    // Without api-hot, the others still look imbalanced (0.1 vs 1.5): acting would remove the
    // wrong "highest" pod.
    const samples = samplesOf({ 'api-a': 0.1, 'api-b': 1.5, 'api-c': 1.4, 'api-d': 0.2 });

    const decision = decide(
      pods(['api-a', 'api-b', 'api-c', 'api-d', 'api-hot']),
      samples,
      POLICY,
      NOW,
    );

    expect(skipOf(decision)).toMatchObject({
      reason: 'incomplete-metrics',
      detail: expect.stringContaining('(api-hot)'),
    });
  });

  it('when a pod without a sample does not count anyway (not Ready, young), then it is not missing', () => {
    const all = [
      ...pods(['api-a', 'api-b', 'api-c']),
      buildPod({ name: 'api-new', startedAt: new Date(NOW.getTime() - 1000) }),
      buildPod({ name: 'api-unready', ready: false }),
    ];

    const decision = decide(
      all,
      samplesOf({ 'api-a': 0.1, 'api-b': 1.0, 'api-c': 2.0 }),
      POLICY,
      NOW,
    );

    expect(decision.act).toBe(true);
  });

  it('is checked before MIN_PODS: 2 of 3 sampled is incomplete, not too few', () => {
    const decision = decide(pods(['a', 'b', 'c']), samplesOf({ a: 0.1, b: 3 }), POLICY, NOW);

    expect(skipOf(decision).reason).toBe('incomplete-metrics');
  });
});
