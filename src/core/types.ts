/**
 * The vocabulary of pod-rebalancer's decisions, defined once. A reason is the `reason` in the
 * HTTP report, the log field, the Event message and the metric label alike.
 */
import type { Measure } from './policy.js';

/** Why an alert was acknowledged without removing anything (SPEC's list). */
export const SKIP_REASONS = [
  'resolved',
  'unknown-alert',
  'missing-labels',
  'not-found',
  'opted-out',
  'rollout-in-progress',
  'cooldown',
  'below-threshold',
  'too-few-pods',
  'outside-window',
  'pdb-blocked',
  'ineffective',
  'invalid-policy',
  'out-of-scope',
  'budget-exhausted',
  'guarded',
  'other-cluster',
  'incomplete-metrics',
  'no-improvement-expected',
  'scaling',
  'unconfirmed-alert',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/**
 * Why handling failed. `*-unavailable` and `deadline-exceeded` (too little time was left to act
 * before the webhook's deadline) mean a retry may succeed (HTTP 503).
 */
export const FAILURE_REASONS = [
  'prometheus-unavailable',
  'kubernetes-unavailable',
  'prometheus-error',
  'kubernetes-error',
  'removal-failed',
  'internal-error',
  'deadline-exceeded',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** The reason recorded when pods were (or in dry run would have been) removed. */
export type ActReason = 'imbalanced';

export type Outcome = 'rebalanced' | 'dry-run' | 'skipped' | 'failed';
export type Reason = SkipReason | FailureReason | ActReason;

/** What the decision core needs to know about one pod. */
export interface PodFacts {
  name: string;
  uid: string;
  phase: string;
  ready: boolean;
  terminating: boolean;
  /** When the pod started; undefined while it has not. */
  startedAt: Date | undefined;
  /** The pod's own priority class and priority (admission sets them; system-critical pods are out of scope). */
  priorityClassName?: string;
  priority?: number;
}

/** What the gates need to know about the Deployment. */
export interface DeploymentFacts {
  namespace: string;
  name: string;
  uid: string;
  optedOut: boolean;
  /** Annotated `pod-rebalancer.io/enabled: "true"` (what REQUIRE_OPT_IN asks for). */
  optedIn?: boolean;
  /** The pod template's priorityClassName and priority, if set (system-critical pods are out of scope). */
  priorityClassName?: string;
  priority?: number;
  rolloutInProgress: boolean;
  selector: LabelSelector;
  /** spec.replicas and status.availableReplicas (a one-by-one rotation waits for them). */
  desiredReplicas?: number;
  availableReplicas?: number;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Per-pod CPU in cores, keyed by pod name. A pod without a sample is simply absent. */
export type CpuSamples = ReadonlyMap<string, number>;

export interface Stats {
  count: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
}

/** A pod chosen for removal, with the CPU that made it the highest or the lowest. */
export interface ChosenPod {
  name: string;
  uid: string;
  cpu: number;
  role: 'highest' | 'lowest';
}

export type Decision =
  | { act: true; stats: Stats; pods: ChosenPod[] }
  | { act: false; reason: SkipReason; detail: string; stats?: Stats };

/** The knobs of the decision: the alert's policy (core/policy.ts) and MIN_POD_AGE. */
export interface Policy {
  /** In the measure's unit: cores for `stddev`, a ratio for `relative_stddev`. */
  threshold: number;
  /** What is compared with the threshold; `stddev` when absent. */
  measure?: Measure;
  minPods: number;
  minPodAgeMs: number;
  /**
   * Share (0-1] of the pods that count that must have a CPU sample (MIN_SAMPLE_COVERAGE);
   * 1 when absent: every one of them.
   */
  minSampleCoverage?: number;
  /**
   * Share by which the measure must be predicted to fall (MIN_IMPROVEMENT, or the alert's
   * `pod_rebalancer_min_improvement`); DEFAULT_MIN_IMPROVEMENT (10%) when absent.
   */
  minImprovement?: number;
}

/** One Deployment an alert asks us to look at. */
export interface Target {
  namespace: string;
  deployment: string;
}
