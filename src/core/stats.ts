import type { Stats } from './types.js';

/**
 * Mean, population standard deviation (what PromQL's `stddev` computes), min and max.
 * Uses Welford's single pass so that large, close values do not lose precision.
 */
export function computeStats(values: readonly number[]): Stats {
  let mean = 0;
  let m2 = 0;
  let min = Infinity;
  let max = -Infinity;
  values.forEach((value, i) => {
    const delta = value - mean;
    mean += delta / (i + 1);
    m2 += delta * (value - mean);
    if (value < min) min = value;
    if (value > max) max = value;
  });
  const count = values.length;
  if (count === 0) return { count, mean: NaN, stddev: NaN, min: NaN, max: NaN };
  return { count, mean, stddev: Math.sqrt(m2 / count), min, max };
}
