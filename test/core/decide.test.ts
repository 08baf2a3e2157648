import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  decide,
  gateDeployment,
  ineligibility,
  selectHighestAndLowest,
} from '../../src/core/decide.js';
import type { Decision, PodFacts, Policy, Stats } from '../../src/core/types.js';
import { buildDeploymentFacts, buildPod, samplesOf } from '../support/builders.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const MIN_POD_AGE_MS = 10 * 60_000;
const POLICY: Policy = { threshold: 0.3, minPods: 3, minPodAgeMs: MIN_POD_AGE_MS };

const ago = (ms: number) => new Date(NOW.getTime() - ms);

/** Independent oracle: mean and population stddev in two passes. */
function twoPassStats(values: readonly number[]): Stats {
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
  return {
    count: values.length,
    mean,
    stddev: Math.sqrt(variance),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

function expectStatsClose(actual: Stats | undefined, expected: Stats, digits = 9): void {
  expect(actual).toBeDefined();
  expect(actual!.count).toBe(expected.count);
  expect(actual!.min).toBe(expected.min);
  expect(actual!.max).toBe(expected.max);
  expect(actual!.mean).toBeCloseTo(expected.mean, digits);
  expect(actual!.stddev).toBeCloseTo(expected.stddev, digits);
}

function chosenOf(decision: Decision): { name: string; role: string }[] {
  if (!decision.act) throw new Error(`expected an action, got ${decision.reason}`);
  return decision.pods.map(({ name, role }) => ({ name, role }));
}

function reasonOf(decision: Decision): string {
  if (decision.act) throw new Error('expected a skip, got an action');
  return decision.reason;
}

describe('gateDeployment', () => {
  it.each([
    ['the Deployment does not exist', undefined, 'not-found'],
    ['it is opted out', buildDeploymentFacts({ optedOut: true }), 'opted-out'],
    [
      'a rollout is in progress',
      buildDeploymentFacts({ rolloutInProgress: true }),
      'rollout-in-progress',
    ],
    [
      'it is opted out and mid-rollout (opt-out is reported first)',
      buildDeploymentFacts({ optedOut: true, rolloutInProgress: true }),
      'opted-out',
    ],
  ])('stops the target when %s', (_case, deployment, reason) => {
    const result = gateDeployment(deployment);

    expect(result?.reason).toBe(reason);
    expect(result?.detail).toEqual(expect.any(String));
  });

  it('lets an existing, enabled Deployment without a rollout through', () => {
    expect(gateDeployment(buildDeploymentFacts())).toBeUndefined();
  });
});

describe('ineligibility: which pods count', () => {
  it.each([
    ['phase Pending', { phase: 'Pending' }, 0.5, /phase Pending/],
    ['phase Succeeded', { phase: 'Succeeded' }, 0.5, /phase Succeeded/],
    ['phase Failed', { phase: 'Failed' }, 0.5, /phase Failed/],
    ['phase Unknown', { phase: 'Unknown' }, 0.5, /phase Unknown/],
    ['not Ready', { ready: false }, 0.5, /not ready/],
    ['terminating', { terminating: true }, 0.5, /terminating/],
    ['not started (no startedAt)', { startedAt: undefined }, 0.5, /MIN_POD_AGE/],
    ['1 ms younger than MIN_POD_AGE', { startedAt: ago(MIN_POD_AGE_MS - 1) }, 0.5, /MIN_POD_AGE/],
    ['started just now', { startedAt: NOW }, 0.5, /MIN_POD_AGE/],
    ['started in the future (clock skew)', { startedAt: ago(-60_000) }, 0.5, /MIN_POD_AGE/],
    ['without a CPU sample', {}, undefined, /no CPU sample/],
    ['with a NaN sample', {}, NaN, /no CPU sample/],
    ['with a +Infinity sample', {}, Infinity, /no CPU sample/],
    ['with a -Infinity sample', {}, -Infinity, /no CPU sample/],
    ['with a negative sample', {}, -0.01, /no CPU sample/],
  ])('leaves out a pod %s, saying why', (_case, overrides, cpu, why) => {
    expect(ineligibility(buildPod(overrides), cpu, POLICY, NOW)).toMatch(why);
  });

  it.each([
    ['exactly MIN_POD_AGE old', { startedAt: ago(MIN_POD_AGE_MS) }, 0.5],
    ['older than MIN_POD_AGE', { startedAt: ago(MIN_POD_AGE_MS + 1) }, 0.5],
    ['using no CPU at all (0 is a sample)', {}, 0],
    ['of any age when MIN_POD_AGE is 0', { startedAt: NOW }, 0.5, 0],
  ])('counts a Running, Ready pod %s', (_case, overrides, cpu, minPodAgeMs = MIN_POD_AGE_MS) => {
    const policy = { ...POLICY, minPodAgeMs };

    expect(ineligibility(buildPod(overrides), cpu, policy, NOW)).toBeUndefined();
  });
});

/** One ineligible pod "x" for each safety rule, with a sample that would matter if counted. */
const INELIGIBLE: [string, Partial<PodFacts>, number | undefined][] = [
  ['Pending', { phase: 'Pending' }, 0],
  ['Failed', { phase: 'Failed' }, 9],
  ['not Ready', { ready: false }, 0],
  ['terminating', { terminating: true }, 9],
  ['younger than MIN_POD_AGE', { startedAt: ago(MIN_POD_AGE_MS - 1) }, 0],
  ['not started', { startedAt: undefined }, 9],
  ['without a sample', {}, undefined],
  ['with a NaN sample', {}, NaN],
  ['with an Infinity sample', {}, Infinity],
  ['with a negative sample', {}, -1],
];

function podsAndSamples(cpu: Record<string, number | undefined>, overrides = {}) {
  const pods = Object.keys(cpu).map((name) =>
    buildPod({ name, ...(name === 'x' ? overrides : {}) }),
  );
  const record = Object.fromEntries(
    Object.entries(cpu).filter((e): e is [string, number] => e[1] !== undefined),
  );
  return { pods, samples: samplesOf(record) };
}

/** Lets 3 of 4 pods with a sample be enough, so that the pod without one can be looked at. */
const LENIENT = { ...POLICY, minSampleCoverage: 0.75 };

describe('decide: ineligible pods are neither candidates nor counted', () => {
  it.each(INELIGIBLE)(
    'never chooses a pod %s, and computes the stats without it',
    (_case, overrides, cpu) => {
      const { pods, samples } = podsAndSamples({ a: 0.2, x: cpu, b: 1.0, c: 1.8 }, overrides);

      const decision = decide(pods, samples, LENIENT, NOW);

      expect(chosenOf(decision)).toEqual([
        { name: 'c', role: 'highest' },
        { name: 'a', role: 'lowest' },
      ]);
      expectStatsClose(decision.stats, twoPassStats([0.2, 1.0, 1.8]));
    },
  );

  it.each(INELIGIBLE)(
    'does not let a pod %s raise the stddev of a balanced Deployment',
    (_case, overrides, cpu) => {
      // Counted, x's sample (0, 9, ±Infinity...) would push the stddev far above 0.3.
      const { pods, samples } = podsAndSamples({ a: 1.0, b: 1.1, c: 1.2, x: cpu }, overrides);

      const decision = decide(pods, samples, LENIENT, NOW);

      expect(reasonOf(decision)).toBe('below-threshold');
      expectStatsClose(decision.stats, twoPassStats([1.0, 1.1, 1.2]));
    },
  );

  it('leaves out a young pod with 0 CPU that would otherwise trigger a rebalance', () => {
    const { pods, samples } = podsAndSamples({ a: 1.0, b: 1.1, c: 1.2, x: 0 });
    const young = pods.map((p) => (p.name === 'x' ? { ...p, startedAt: ago(60_000) } : p));

    expect(decide(pods, samples, POLICY, NOW).act).toBe(true);
    expect(reasonOf(decide(young, samples, POLICY, NOW))).toBe('below-threshold');
  });
});

describe('decide: enough pods', () => {
  const imbalanced = { a: 0.1, b: 1.0, c: 2.0, d: 3.0 };

  it.each([
    ['there are no pods', {}, POLICY, 0],
    ['there is one pod', { a: 3.0 }, POLICY, 1],
    ['one pod even when MIN_PODS allows one', { a: 3.0 }, { ...POLICY, minPods: 1 }, 1],
    ['two pods are fewer than MIN_PODS 3', { a: 0.1, b: 3.0 }, POLICY, 2],
    ['four pods are fewer than MIN_PODS 5', imbalanced, { ...POLICY, minPods: 5 }, 4],
    [
      'one of three pods has no sample and MIN_SAMPLE_COVERAGE allows it',
      { a: 0.1, b: 3.0, c: undefined },
      { ...POLICY, minSampleCoverage: 0.6 },
      2,
    ],
  ])('skips as too-few-pods when %s', (_case, cpu, policy, eligibleCount) => {
    const { pods, samples } = podsAndSamples(cpu);

    const decision = decide(pods, samples, policy, NOW);

    expect(reasonOf(decision)).toBe('too-few-pods');
    expect(decision.stats?.count).toBe(eligibleCount);
  });

  it('does not count an ineligible pod towards MIN_PODS', () => {
    const { pods, samples } = podsAndSamples({ a: 0.1, b: 3.0, x: 1.0 }, { ready: false });

    expect(reasonOf(decide(pods, samples, POLICY, NOW))).toBe('too-few-pods');
  });

  it.each([
    ['exactly MIN_PODS (3) eligible pods', { a: 0.1, b: 1.0, c: 3.0 }, POLICY],
    ['two pods when MIN_PODS is 2', { a: 0.1, b: 3.0 }, { ...POLICY, minPods: 2 }],
  ])('acts with %s', (_case, cpu, policy) => {
    const { pods, samples } = podsAndSamples(cpu);

    expect(decide(pods, samples, policy, NOW).act).toBe(true);
  });
});

describe('decide: the threshold', () => {
  // 0, 0, 1, 1 has mean 0.5 and population stddev exactly 0.5 in binary floating point.
  const half = { a: 0, b: 0, c: 1, d: 1 };

  it.each([
    ['equals the threshold', half, 0.5],
    ['is below the threshold', half, 0.6],
    ['is 0 because all values are equal', { a: 0.7, b: 0.7, c: 0.7, d: 0.7 }, 0.3],
    ['is 0 because all values are equal, even with a tiny threshold', { a: 1, b: 1, c: 1 }, 1e-9],
  ])('skips as below-threshold when the stddev %s', (_case, cpu, threshold) => {
    const { pods, samples } = podsAndSamples(cpu);

    const decision = decide(pods, samples, { ...POLICY, threshold }, NOW);

    expect(reasonOf(decision)).toBe('below-threshold');
    expect(decision.stats?.count).toBe(Object.keys(cpu).length);
  });

  it('acts only when the stddev is strictly above the threshold', () => {
    const { pods, samples } = podsAndSamples(half);

    const decision = decide(pods, samples, { ...POLICY, threshold: 0.49999 }, NOW);

    expect(decision.act).toBe(true);
    expect(decision.stats?.stddev).toBe(0.5);
  });

  it('checks the pod count before the threshold', () => {
    const { pods, samples } = podsAndSamples({ a: 0, b: 0.7 });

    expect(reasonOf(decide(pods, samples, { ...POLICY, threshold: 0.5 }, NOW))).toBe(
      'too-few-pods',
    );
  });
});

describe('decide: the statistics', () => {
  it('reports mean, population stddev (as PromQL stddev), min and max of a known case', () => {
    // 2,4,4,4,5,5,7,9 scaled by 0.1: mean 0.5, population stddev 0.2 (the sample one is 0.214).
    const cpu = { a: 0.2, b: 0.4, c: 0.4, d: 0.4, e: 0.5, f: 0.5, g: 0.7, h: 0.9 };
    const { pods, samples } = podsAndSamples(cpu);

    const decision = decide(pods, samples, { ...POLICY, threshold: 0.1 }, NOW);

    expect(decision.act).toBe(true);
    expectStatsClose(decision.stats, { count: 8, mean: 0.5, stddev: 0.2, min: 0.2, max: 0.9 }, 12);
  });

  it('acts on a stddev above the threshold and names the highest and the lowest pod with their CPU', () => {
    const { pods, samples } = podsAndSamples({ a: 0.5, b: 2.5, c: 0.1, d: 1.0 });

    const decision = decide(pods, samples, POLICY, NOW);

    expect(decision).toEqual({
      act: true,
      stats: expect.any(Object),
      pods: [
        { name: 'b', uid: 'uid-b', cpu: 2.5, role: 'highest' },
        { name: 'c', uid: 'uid-c', cpu: 0.1, role: 'lowest' },
      ],
    });
  });
});

describe('decide: ties are broken by pod name, ascending', () => {
  it.each([
    ['for the highest', { b: 2.0, a: 2.0, c: 0.1, d: 1.0 }, 'a', 'c'],
    ['for the highest, whatever the input order', { a: 2.0, b: 2.0, c: 0.1, d: 1.0 }, 'a', 'c'],
    ['for the lowest', { z: 2.0, y: 0.1, x: 0.1, w: 1.0 }, 'z', 'x'],
    ['for the lowest, whatever the input order', { z: 2.0, x: 0.1, y: 0.1, w: 1.0 }, 'z', 'x'],
    ['for both', { d: 3, c: 3, b: 0, a: 0 }, 'c', 'a'],
    [
      'comparing names as strings (api-10 before api-9)',
      { 'api-9': 3, 'api-10': 3, m: 0, n: 1 },
      'api-10',
      'm',
    ],
  ])('%s', (_case, cpu, highest, lowest) => {
    const { pods, samples } = podsAndSamples(cpu);

    expect(chosenOf(decide(pods, samples, POLICY, NOW))).toEqual([
      { name: highest, role: 'highest' },
      { name: lowest, role: 'lowest' },
    ]);
  });
});

describe('selectHighestAndLowest', () => {
  const entry = (name: string, cpu: number) => ({ pod: buildPod({ name }), cpu });

  it('chooses nothing from no pods', () => {
    expect(selectHighestAndLowest([])).toEqual([]);
  });

  it.each([
    ['a single pod', [entry('a', 1)], 'a'],
    ['pods that all use the same CPU', [entry('c', 1), entry('a', 1), entry('b', 1)], 'a'],
  ])('never lists the same pod twice: %s gives one pod', (_case, eligible, name) => {
    expect(selectHighestAndLowest(eligible)).toEqual([
      { name, uid: `uid-${name}`, cpu: 1, role: 'highest' },
    ]);
  });
});

describe('decide at scale: 10,000 pods', () => {
  // cpu = (i mod 97) / 10: many pods share the maximum 9.6 and the minimum 0.
  const names = Array.from({ length: 10_000 }, (_, i) => `pod-${String(i).padStart(5, '0')}`);
  const cpuOf = (i: number) => (i % 97) / 10;
  // Reversed, so that the first pod met with the max or min is not the one that sorts first.
  const pods = names.map((name) => buildPod({ name })).reverse();
  const samples = new Map(names.map((name, i) => [name, cpuOf(i)]));

  it('chooses the highest and lowest, ties broken by name, and computes exact statistics', () => {
    // An even spread over 10,000 pods is one no two restarts fix: this test is about the choice.
    const decision = decide(pods, samples, { ...POLICY, minImprovement: 0 }, NOW);

    expect(chosenOf(decision)).toEqual([
      { name: 'pod-00096', role: 'highest' },
      { name: 'pod-00000', role: 'lowest' },
    ]);
    expectStatsClose(decision.stats, twoPassStats(names.map((_, i) => cpuOf(i))));
  });
});

describe('decide: properties', () => {
  const POD_NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'api-1', 'api-10', 'api-9'];

  /** A sample: usually a usable value from a small set (so ties happen), sometimes garbage. */
  const sampleArb: fc.Arbitrary<number | undefined> = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 12 }).map((n) => n / 4) },
    { weight: 2, arbitrary: fc.double({ min: 0, max: 64, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, NaN, Infinity, -Infinity, -0.5) },
  );

  const podArb = (name: string) =>
    fc.record({
      pod: fc.record({
        name: fc.constant(name),
        uid: fc.constant(`uid-${name}`),
        phase: fc.oneof(
          { weight: 8, arbitrary: fc.constant('Running') },
          { weight: 1, arbitrary: fc.constantFrom('Pending', 'Succeeded', 'Failed', 'Unknown') },
        ),
        ready: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, fc.constant(false)),
        terminating: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, fc.constant(true)),
        startedAt: fc.option(fc.integer({ min: -60_000, max: 3 * MIN_POD_AGE_MS }).map(ago), {
          nil: undefined,
          freq: 10,
        }),
      }),
      cpu: sampleArb,
    });

  const caseArb = fc.record({
    entries: fc
      .subarray(POD_NAMES)
      .chain((names) => fc.tuple(...names.map(podArb)))
      .chain((entries) =>
        fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length }),
      ),
    policy: fc.record({
      threshold: fc.double({ min: 0.01, max: 4, noNaN: true }),
      minPods: fc.integer({ min: 1, max: 6 }),
      minPodAgeMs: fc.constantFrom(0, MIN_POD_AGE_MS),
      minSampleCoverage: fc.constantFrom(undefined, 1, 0.75, 0.5, 0.01),
    }),
  });

  type Entry = { pod: PodFacts; cpu: number | undefined };

  function inputsOf(entries: readonly Entry[]) {
    const samples = new Map<string, number>();
    for (const { pod, cpu } of entries) if (cpu !== undefined) samples.set(pod.name, cpu);
    return { pods: entries.map((e) => e.pod), samples };
  }

  /** The pod rules of SPEC.md but the sample, restated independently of src. */
  function countedByRules(entries: readonly Entry[], policy: Policy) {
    return entries.filter(
      ({ pod }) =>
        pod.phase === 'Running' &&
        pod.ready &&
        !pod.terminating &&
        pod.startedAt !== undefined &&
        NOW.getTime() - pod.startedAt.getTime() >= policy.minPodAgeMs,
    );
  }

  /** The safety rules of SPEC.md, restated independently of src. */
  function eligibleByRules(entries: readonly Entry[], policy: Policy) {
    return countedByRules(entries, policy).filter(
      ({ cpu }) => cpu !== undefined && Number.isFinite(cpu) && cpu >= 0,
    ) as { pod: PodFacts; cpu: number }[];
  }

  const byName = (a: { pod: PodFacts }, b: { pod: PodFacts }) =>
    a.pod.name < b.pod.name ? -1 : a.pod.name > b.pod.name ? 1 : 0;

  it('chooses at most two pods, never the same one twice', () => {
    fc.assert(
      fc.property(caseArb, ({ entries, policy }) => {
        const { pods, samples } = inputsOf(entries);
        const decision = decide(pods, samples, policy, NOW);
        if (!decision.act) return;
        expect(decision.pods.length).toBeGreaterThanOrEqual(1);
        expect(decision.pods.length).toBeLessThanOrEqual(2);
        expect(new Set(decision.pods.map((p) => p.name)).size).toBe(decision.pods.length);
      }),
    );
  });

  it('never chooses a pod that breaks a safety rule', () => {
    fc.assert(
      fc.property(caseArb, ({ entries, policy }) => {
        const { pods, samples } = inputsOf(entries);
        const eligible = new Set(eligibleByRules(entries, policy).map((e) => e.pod.name));
        const decision = decide(pods, samples, policy, NOW);
        if (!decision.act) return;
        for (const chosen of decision.pods) expect(eligible).toContain(chosen.name);
      }),
    );
  });

  it('agrees with the safety rules on every pod', () => {
    fc.assert(
      fc.property(caseArb, ({ entries, policy }) => {
        const eligible = new Set(eligibleByRules(entries, policy).map((e) => e.pod.name));
        for (const { pod, cpu } of entries) {
          expect(ineligibility(pod, cpu, policy, NOW) === undefined).toBe(eligible.has(pod.name));
        }
      }),
    );
  });

  it('acts exactly when enough eligible pods have a stddev above the threshold, on the statistics of the eligible pods only', () => {
    fc.assert(
      fc.property(caseArb, ({ entries, policy }) => {
        const { pods, samples } = inputsOf(entries);
        const eligible = eligibleByRules(entries, policy);
        const counted = countedByRules(entries, policy);
        const decision = decide(pods, samples, policy, NOW);
        expect(decision.stats?.count).toBe(eligible.length);
        const coverage = counted.length === 0 ? 1 : eligible.length / counted.length;
        if (coverage + 1e-9 < (policy.minSampleCoverage ?? 1)) {
          expect(reasonOf(decision)).toBe('incomplete-metrics');
          return;
        }
        if (eligible.length < Math.max(policy.minPods, 2)) {
          expect(reasonOf(decision)).toBe('too-few-pods');
          return;
        }
        expectStatsClose(decision.stats, twoPassStats(eligible.map((e) => e.cpu)), 6);
        expect(decision.act).toBe(decision.stats!.stddev > policy.threshold);
        if (!decision.act) expect(decision.reason).toBe('below-threshold');
      }),
    );
  });

  it('chooses the argmax and the argmin of the eligible pods by CPU, ties by name', () => {
    fc.assert(
      fc.property(caseArb, ({ entries, policy }) => {
        const { pods, samples } = inputsOf(entries);
        const decision = decide(pods, samples, policy, NOW);
        if (!decision.act) return;
        const eligible = eligibleByRules(entries, policy);
        const highest = [...eligible].sort((a, b) => b.cpu - a.cpu || byName(a, b))[0]!;
        const lowest = [...eligible].sort((a, b) => a.cpu - b.cpu || byName(a, b))[0]!;
        const expected = [{ name: highest.pod.name, cpu: highest.cpu, role: 'highest' }];
        if (lowest.pod.name !== highest.pod.name) {
          expected.push({ name: lowest.pod.name, cpu: lowest.cpu, role: 'lowest' });
        }
        expect(decision.pods.map(({ name, cpu, role }) => ({ name, cpu, role }))).toEqual(expected);
      }),
    );
  });

  it('is deterministic: the same facts, in any order, give the same decision', () => {
    const withShuffle = caseArb.chain((c) =>
      fc.tuple(
        fc.constant(c),
        fc.shuffledSubarray(c.entries, {
          minLength: c.entries.length,
          maxLength: c.entries.length,
        }),
      ),
    );
    fc.assert(
      fc.property(withShuffle, ([{ entries, policy }, shuffled]) => {
        const original = inputsOf(entries);
        const first = decide(original.pods, original.samples, policy, NOW);
        expect(decide(original.pods, original.samples, policy, NOW)).toEqual(first);

        const reordered = inputsOf(shuffled);
        const second = decide(reordered.pods, reordered.samples, policy, NOW);
        // The stats may differ in the last bits with the summation order; the choice may not.
        const { stats: firstStats, ...firstChoice } = first;
        const { stats: secondStats, ...secondChoice } = second;
        expect(secondChoice).toEqual(firstChoice);
        if (firstStats && firstStats.count > 0) expectStatsClose(secondStats, firstStats);
      }),
    );
  });
});
