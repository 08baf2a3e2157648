/**
 * The policy an alert carries: the rule in Git says, in its annotations, which threshold and
 * measure it fired on and how many pods it needs, and the service verifies against exactly
 * that. The configuration only fills in what an annotation leaves out. Pure: no I/O.
 */
import { ROTATIONS, type Rotation } from './rotation.js';
import type { SkipReason } from './types.js';

/** The alert annotations that carry the policy (SPEC, "Policy carried by the alert"). */
export const POLICY_ANNOTATIONS = {
  threshold: 'pod_rebalancer_threshold',
  measure: 'pod_rebalancer_measure',
  minPods: 'pod_rebalancer_min_pods',
  minImprovement: 'pod_rebalancer_min_improvement',
  rotation: 'pod_rebalancer_rotation',
} as const;

/** `stddev` in cores, or `relative_stddev` = stddev ÷ mean, a ratio. */
export const MEASURES = ['stddev', 'relative_stddev'] as const;
export type Measure = (typeof MEASURES)[number];

/** Where a value of the policy came from, as the report says it. */
export type PolicySource = 'alert annotation' | 'configuration';

/** The policy one alert is verified against, each value with where it came from. */
export interface AlertPolicy {
  threshold: number;
  measure: Measure;
  minPods: number;
  /** The share by which an action must be predicted to lower the measure (core/improvement.ts). */
  minImprovement: number;
  rotation: Rotation;
  source: {
    threshold: PolicySource;
    measure: PolicySource;
    minPods: PolicySource;
    minImprovement: PolicySource;
    rotation: PolicySource;
  };
}

/** What the configuration says when an annotation is absent. */
export interface PolicyDefaults {
  /** CPU_STDDEV_THRESHOLD, in cores: only meaningful for the `stddev` measure. */
  threshold: number;
  /** MIN_PODS. */
  minPods: number;
  /** MIN_IMPROVEMENT; DEFAULT_MIN_IMPROVEMENT when absent. */
  minImprovement?: number;
  /** ROTATION; `together` when absent. */
  rotation?: Rotation;
}

/** MIN_IMPROVEMENT's default: the share by which the measure must be predicted to fall. */
export const DEFAULT_MIN_IMPROVEMENT = 0.1;

export type PolicyResult =
  { ok: true; policy: AlertPolicy } | { ok: false; reason: SkipReason; detail: string };

const MAX_MIN_PODS = 100_000;

/** One annotation's value, or the sentence saying why it does not parse. */
type Parsed<T> = { value: T } | { problem: string };

function parseThreshold(text: string): Parsed<number> {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) {
    return { problem: `${POLICY_ANNOTATIONS.threshold} "${text}" is not a positive number` };
  }
  return { value };
}

function parseMeasure(text: string): Parsed<Measure> {
  const value = text.trim();
  if ((MEASURES as readonly string[]).includes(value)) return { value: value as Measure };
  return {
    problem: `${POLICY_ANNOTATIONS.measure} "${text}" is not one of ${MEASURES.join(', ')}`,
  };
}

function parseMinPods(text: string): Parsed<number> {
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || value < 2 || value > MAX_MIN_PODS) {
    return {
      problem: `${POLICY_ANNOTATIONS.minPods} "${text}" is not a whole number from 2 to ${MAX_MIN_PODS}`,
    };
  }
  return { value };
}

/**
 * A share written as a percentage (`10%`) or as a plain number below 1 (`0.1`), from 0 (no
 * gate) to below 100%. Returns the share, or a sentence saying what is expected.
 */
export function parseMinImprovement(text: string): Parsed<number> {
  const trimmed = text.trim();
  const percentage = /^(\d+(?:\.\d+)?)%$/.exec(trimmed);
  const share = percentage ? Number(percentage[1]) / 100 : Number(trimmed);
  const plain = !percentage && /^\d*\.?\d+$/.test(trimmed) && share < 1;
  if ((percentage || plain) && share >= 0 && share < 1) return { value: share };
  return { problem: 'expected a percentage from 0% to below 100%, e.g. 10% (or a share, 0.1)' };
}

function parseMinImprovementAnnotation(text: string): Parsed<number> {
  const parsed = parseMinImprovement(text);
  return 'value' in parsed
    ? parsed
    : { problem: `${POLICY_ANNOTATIONS.minImprovement} "${text}": ${parsed.problem}` };
}

function parseRotation(text: string): Parsed<Rotation> {
  const value = text.trim();
  if ((ROTATIONS as readonly string[]).includes(value)) return { value: value as Rotation };
  return {
    problem: `${POLICY_ANNOTATIONS.rotation} "${text}" is not one of ${ROTATIONS.join(', ')}`,
  };
}

/** A relative threshold cannot fall back to CPU_STDDEV_THRESHOLD, which is in cores. */
function relativeWithoutThreshold(
  measure: Parsed<Measure>,
  thresholdSource: PolicySource,
): string[] {
  if (!('value' in measure) || measure.value !== 'relative_stddev') return [];
  if (thresholdSource !== 'configuration') return [];
  return [
    `${POLICY_ANNOTATIONS.measure} "relative_stddev" needs ${POLICY_ANNOTATIONS.threshold} (CPU_STDDEV_THRESHOLD is in cores)`,
  ];
}

/** An annotation's parsed value, or the configuration's when the annotation is absent. */
function orDefault<T>(
  text: string | undefined,
  parse: (text: string) => Parsed<T>,
  fallback: T,
): Parsed<T> & { source: PolicySource } {
  if (text === undefined) return { value: fallback, source: 'configuration' };
  return { ...parse(text), source: 'alert annotation' };
}

/** The annotations as the rule wrote them, for the log and the detail of an invalid policy. */
export function policyAnnotations(
  annotations: Readonly<Record<string, string>>,
): Record<string, string> {
  return Object.fromEntries(
    Object.values(POLICY_ANNOTATIONS)
      .filter((name) => annotations[name] !== undefined)
      .map((name) => [name, annotations[name]!]),
  );
}

/**
 * Reads the policy from an alert's annotations, falling back to the configuration for each one
 * that is absent. A value that does not parse is `invalid-policy`: the rule is wrong and a
 * retry will not fix it. A relative threshold cannot fall back to CPU_STDDEV_THRESHOLD (cores),
 * so `relative_stddev` without `pod_rebalancer_threshold` is invalid too.
 */
export function policyFromAnnotations(
  annotations: Readonly<Record<string, string>>,
  defaults: PolicyDefaults,
): PolicyResult {
  const threshold = orDefault(
    annotations[POLICY_ANNOTATIONS.threshold],
    parseThreshold,
    defaults.threshold,
  );
  const measure = orDefault<Measure>(
    annotations[POLICY_ANNOTATIONS.measure],
    parseMeasure,
    'stddev',
  );
  const minPods = orDefault(
    annotations[POLICY_ANNOTATIONS.minPods],
    parseMinPods,
    defaults.minPods,
  );
  const minImprovement = orDefault(
    annotations[POLICY_ANNOTATIONS.minImprovement],
    parseMinImprovementAnnotation,
    defaults.minImprovement ?? DEFAULT_MIN_IMPROVEMENT,
  );
  const rotation = orDefault(
    annotations[POLICY_ANNOTATIONS.rotation],
    parseRotation,
    defaults.rotation ?? 'together',
  );
  const problems = [
    ...[threshold, measure, minPods, minImprovement, rotation].flatMap((p) =>
      'problem' in p ? [p.problem] : [],
    ),
    ...relativeWithoutThreshold(measure, threshold.source),
  ];
  if (
    !('value' in threshold) ||
    !('value' in measure) ||
    !('value' in minPods) ||
    !('value' in minImprovement) ||
    !('value' in rotation) ||
    problems.length > 0
  ) {
    return {
      ok: false,
      reason: 'invalid-policy',
      detail: `the alert rule's policy is invalid: ${problems.join('; ')}`,
    };
  }
  return {
    ok: true,
    policy: {
      threshold: threshold.value,
      measure: measure.value,
      minPods: minPods.value,
      minImprovement: minImprovement.value,
      rotation: rotation.value,
      source: {
        threshold: threshold.source,
        measure: measure.source,
        minPods: minPods.source,
        minImprovement: minImprovement.source,
        rotation: rotation.source,
      },
    },
  };
}

/** The value of a measure over the eligible pods' statistics. */
export function measureOf(measure: Measure, stats: { mean: number; stddev: number }): number {
  if (measure === 'stddev') return stats.stddev;
  // All pods idle: no spread worth a restart, and no division by zero.
  return stats.mean > 0 ? stats.stddev / stats.mean : 0;
}

/** "stddev 0.412 cores" or "relative stddev 0.38": a measure's value as people read it. */
export function describeMeasure(measure: Measure, value: number): string {
  return measure === 'stddev'
    ? `CPU stddev ${value.toFixed(3)} cores`
    : `CPU relative stddev ${value.toFixed(3)}`;
}
