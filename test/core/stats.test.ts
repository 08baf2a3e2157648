import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { computeStats } from '../../src/core/stats.js';

describe('computeStats', () => {
  it('has no mean, stddev, min or max for no values, and counts 0', () => {
    expect(computeStats([])).toEqual({ count: 0, mean: NaN, stddev: NaN, min: NaN, max: NaN });
  });

  it.each([
    ['one value', [0.42], { count: 1, mean: 0.42, stddev: 0, min: 0.42, max: 0.42 }],
    ['equal values', [1.5, 1.5, 1.5], { count: 3, mean: 1.5, stddev: 0, min: 1.5, max: 1.5 }],
    ['two values', [0, 1], { count: 2, mean: 0.5, stddev: 0.5, min: 0, max: 1 }],
    // The population stddev (PromQL's stddev) is 2; the sample stddev would be 2.138.
    [
      'the textbook case 2,4,4,4,5,5,7,9',
      [2, 4, 4, 4, 5, 5, 7, 9],
      { count: 8, mean: 5, stddev: 2, min: 2, max: 9 },
    ],
    [
      'CPU cores in any order',
      [0.9, 0.2, 0.5, 0.4, 0.7, 0.4, 0.5, 0.4],
      { count: 8, mean: 0.5, stddev: 0.2, min: 0.2, max: 0.9 },
    ],
    ['values including 0', [0, 0, 3], { count: 3, mean: 1, stddev: Math.SQRT2, min: 0, max: 3 }],
  ])('computes count, mean, population stddev, min and max of %s', (_case, values, expected) => {
    const stats = computeStats(values);

    expect(stats.count).toBe(expected.count);
    expect(stats.min).toBe(expected.min);
    expect(stats.max).toBe(expected.max);
    expect(stats.mean).toBeCloseTo(expected.mean, 12);
    expect(stats.stddev).toBeCloseTo(expected.stddev, 12);
  });

  it.each([
    ['1e9', 1e9],
    ['1e12', 1e12],
  ])('keeps its precision with large, close values (offset %s)', (_case, offset) => {
    // 4, 7, 13, 16: mean 10, population variance 22.5. A sum-of-squares formula loses this.
    const stats = computeStats([4, 7, 13, 16].map((v) => offset + v));

    expect(stats.mean).toBe(offset + 10);
    expect(stats.stddev).toBeCloseTo(Math.sqrt(22.5), 6);
  });

  it('does not depend on the order of the values beyond rounding', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }),
        (values) => {
          const forward = computeStats(values);
          const backward = computeStats([...values].reverse());
          expect(backward.min).toBe(forward.min);
          expect(backward.max).toBe(forward.max);
          expect(backward.mean).toBeCloseTo(forward.mean, 9);
          expect(backward.stddev).toBeCloseTo(forward.stddev, 9);
        },
      ),
    );
  });

  it('keeps the mean between min and max and the stddev at most half the range', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }),
        (values) => {
          const { mean, stddev, min, max } = computeStats(values);
          const slack = 1e-9 * Math.max(1, max);
          expect(mean).toBeGreaterThanOrEqual(min - slack);
          expect(mean).toBeLessThanOrEqual(max + slack);
          expect(stddev).toBeGreaterThanOrEqual(0);
          expect(stddev).toBeLessThanOrEqual((max - min) / 2 + slack);
        },
      ),
    );
  });
});
