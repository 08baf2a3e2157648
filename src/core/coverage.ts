import type { CpuSamples, SkipReason } from './types.js';

/** Pod names listed in a detail before "and N more". */
const NAMED_PODS = 10;

/** Whether a sample is usable: a finite, non-negative number of cores. */
function hasSample(samples: CpuSamples, pod: string): boolean {
  const cpu = samples.get(pod);
  return cpu !== undefined && Number.isFinite(cpu) && cpu >= 0;
}

/**
 * The sample-coverage gate: of the pods that count (`counted`: Running, Ready, not terminating,
 * older than MIN_POD_AGE), at least `minSampleCoverage` (default 1: all) must have a CPU sample.
 * A missing pod is often the overloaded one (its cAdvisor scrape is what times out), so acting
 * on the rest would remove the wrong pods. Returns the skip naming the pods without a sample.
 */
export function coverageGap(
  counted: readonly string[],
  samples: CpuSamples,
  minSampleCoverage = 1,
): { reason: SkipReason; detail: string } | undefined {
  if (counted.length === 0) return undefined;
  const missing = counted.filter((pod) => !hasSample(samples, pod)).sort();
  const covered = (counted.length - missing.length) / counted.length;
  // A tiny tolerance so that 9 of 10 pods meet 0.9 despite floating point.
  if (missing.length === 0 || covered + 1e-9 >= minSampleCoverage) return undefined;
  const named = missing.slice(0, NAMED_PODS).join(', ');
  const more = missing.length > NAMED_PODS ? ` and ${missing.length - NAMED_PODS} more` : '';
  return {
    reason: 'incomplete-metrics',
    detail:
      `${missing.length} of ${counted.length} pods have no CPU sample (${named}${more}); ` +
      `MIN_SAMPLE_COVERAGE is ${minSampleCoverage}`,
  };
}
