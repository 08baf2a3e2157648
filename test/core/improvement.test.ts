import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decide } from '../../src/core/decide.js';
import { gateImprovement, predictImprovement } from '../../src/core/improvement.js';
import { computeStats } from '../../src/core/stats.js';
import type { Policy } from '../../src/core/types.js';
import { buildPod, samplesOf } from '../support/builders.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const POLICY: Policy = { threshold: 0.3, minPods: 3, minPodAgeMs: 10 * 60_000 };

/** `count` pods at `cpu` each, named `prefix-0` … */
function camp(prefix: string, count: number, cpu: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}-${i}`, cpu]));
}

function decideOver(cpu: Record<string, number>, policy: Policy = POLICY) {
  const pods = Object.keys(cpu).map((name) => buildPod({ name }));
  return decide(pods, samplesOf(cpu), policy, NOW);
}

/** Independent oracle: replace the chosen values by the others' mean and measure again. */
function oracle(values: number[], chosen: number[], relative: boolean): number {
  const others = [...values];
  for (const c of chosen) others.splice(others.indexOf(c), 1);
  const mean = others.reduce((s, v) => s + v, 0) / others.length;
  const after = [...others, ...chosen.map(() => mean)];
  const stats = computeStats(after);
  return relative ? (stats.mean > 0 ? stats.stddev / stats.mean : 0) : stats.stddev;
}

// CPU in cores at a micro-core's resolution: finer than any rate() Prometheus reports, and coarse
// enough that the arithmetic is not lost in subnormal floats (3.8e-162 broke the oracle once).
const cores = (max: number) => fc.integer({ min: 0, max: max * 1e6 }).map((micro) => micro / 1e6);
const cpuValues = fc.array(cores(8), {
  minLength: 3,
  maxLength: 40,
});

/** The highest and the lowest value, as decide() chooses them. */
const extremes = (values: number[]) => [Math.max(...values), Math.min(...values)];

describe('predictImprovement', () => {
  it('when 20 pods sit in two camps (10 at 1.0, 10 at 0.1), then restarting two lowers the stddev by only about 5%', () => {
    const values = [...Array(10).fill(1.0), ...Array(10).fill(0.1)];
    const prediction = predictImprovement(values, [1.0, 0.1], 'stddev');

    expect(prediction.today).toBeCloseTo(0.45, 9);
    expect(prediction.predicted).toBeCloseTo(0.45 * Math.sqrt(18 / 20), 9);
    expect(prediction.improvement).toBeCloseTo(1 - Math.sqrt(0.9), 9); // 5.13%
  });

  it('when one pod is hot and the others are even, then the action is predicted to remove the whole spread', () => {
    const prediction = predictImprovement([1.8, 0.6, 0.6, 0.6, 0.05], [1.8, 0.05], 'stddev');

    expect(prediction.predicted).toBeCloseTo(0, 9);
    expect(prediction.improvement).toBeCloseTo(1, 9);
  });

  it('when the measure is relative_stddev, then the prediction divides by the mean of the others, not by today’s mean', () => {
    // Others: 0.4, 0.6 (mean 0.5, stddev 0.1); 4 pods in all, so stddev' = 0.1 * sqrt(2/4).
    const values = [3.0, 0.4, 0.6, 0.0];
    const prediction = predictImprovement(values, [3.0, 0.0], 'relative_stddev');
    const today = computeStats(values);

    expect(prediction.today).toBeCloseTo(today.stddev / today.mean, 9);
    expect(prediction.predicted).toBeCloseTo((0.1 * Math.sqrt(0.5)) / 0.5, 9);
  });

  it('matches the oracle (replace, then measure again) in both measures', () => {
    fc.assert(
      fc.property(cpuValues, fc.boolean(), (values, relative) => {
        const chosen = extremes(values);
        const measure = relative ? 'relative_stddev' : 'stddev';
        const { predicted } = predictImprovement(values, chosen, measure);
        expect(predicted).toBeCloseTo(oracle(values, chosen, relative), 6);
      }),
    );
  });

  it('never predicts a higher stddev than today’s: the others spread least around their own mean', () => {
    fc.assert(
      fc.property(cpuValues, (values) => {
        const { today, predicted } = predictImprovement(values, extremes(values), 'stddev');
        expect(predicted).toBeLessThanOrEqual(today + 1e-9);
      }),
    );
  });

  it('gives the same improvement whatever the unit: scaling every pod’s CPU changes nothing, in both measures', () => {
    fc.assert(
      fc.property(
        cpuValues,
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.boolean(),
        (values, factor, relative) => {
          const measure = relative ? 'relative_stddev' : 'stddev';
          const scaled = values.map((v) => v * factor);
          const a = predictImprovement(values, extremes(values), measure);
          const b = predictImprovement(scaled, extremes(scaled), measure);
          expect(b.improvement).toBeCloseTo(a.improvement, 6);
        },
      ),
    );
  });

  it('when two equal camps of k pods each, then the improvement is 1 - sqrt(1 - 1/k) whatever their loads', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 50 }),
        fc.double({ min: 0.5, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 0.4, noNaN: true }),
        (k, hot, cold) => {
          const values = [...Array(k).fill(hot), ...Array(k).fill(cold)];
          const { improvement } = predictImprovement(values, [hot, cold], 'stddev');
          expect(improvement).toBeCloseTo(1 - Math.sqrt(1 - 1 / k), 9);
        },
      ),
    );
  });
});

describe('gateImprovement', () => {
  it('when the improvement is below the minimum, then no-improvement-expected with both figures', () => {
    const gate = gateImprovement(
      { today: 0.45, predicted: 0.4269, improvement: 0.0513 },
      'stddev',
      0.1,
    );

    expect(gate).toEqual({
      reason: 'no-improvement-expected',
      detail:
        'replacing the two chosen pods by pods at the mean of the others would take the CPU stddev 0.450 cores to 0.427, 5.1% lower; at least 10% is needed',
    });
  });

  it.each([
    ['exactly the minimum', 0.1, 0.1],
    ['above it', 0.5, 0.1],
    ['no gate (0%) and no improvement at all', 0, 0],
  ])('when the improvement is %s, then it lets the action through', (_name, improvement, min) => {
    expect(
      gateImprovement({ today: 1, predicted: 1 - improvement, improvement }, 'stddev', min),
    ).toBeUndefined();
  });
});

describe('decide with the improvement gate', () => {
  it('when 20 pods sit in two camps (10 at 1.0, 10 at 0.1), then it skips no-improvement-expected instead of acting', () => {
    const decision = decideOver({ ...camp('hot', 10, 1.0), ...camp('cold', 10, 0.1) });

    expect(decision).toMatchObject({ act: false, reason: 'no-improvement-expected' });
    expect(decision.act ? '' : decision.detail).toMatch(/0\.450 cores to 0\.427, 5\.1% lower/);
  });

  it('when the same two camps are measured as relative_stddev, then it skips too', () => {
    const decision = decideOver(
      { ...camp('hot', 10, 1.0), ...camp('cold', 10, 0.1) },
      { ...POLICY, threshold: 0.5, measure: 'relative_stddev' },
    );

    expect(decision).toMatchObject({ act: false, reason: 'no-improvement-expected' });
    expect(decision.act ? '' : decision.detail).toMatch(/relative stddev 0\.818 to 0\.776/);
  });

  it('when the rule asks for no improvement (0%), then the two camps are acted on', () => {
    const decision = decideOver(
      { ...camp('hot', 10, 1.0), ...camp('cold', 10, 0.1) },
      { ...POLICY, minImprovement: 0 },
    );

    expect(decision.act).toBe(true);
  });

  it('when one pod is hot among even ones, then it acts', () => {
    expect(decideOver({ hot: 1.8, a: 0.6, b: 0.62, c: 0.58, cold: 0.05 }).act).toBe(true);
  });

  it('whenever it acts, the predicted fall of the measure is at least the minimum', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), cores(4), {
          minKeys: 3,
          maxKeys: 30,
        }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        fc.boolean(),
        (cpu, minImprovement, relative) => {
          const measure = relative ? 'relative_stddev' : 'stddev';
          const decision = decideOver(cpu, { ...POLICY, measure, minImprovement, threshold: 0.1 });
          if (!decision.act) return;
          const values = Object.values(cpu);
          const chosen = decision.pods.map((p) => p.cpu);
          const { improvement } = predictImprovement(values, chosen, measure);
          expect(improvement).toBeGreaterThanOrEqual(minImprovement);
        },
      ),
    );
  });
});
