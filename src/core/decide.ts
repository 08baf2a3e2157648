import { DEFAULT_MIN_IMPROVEMENT, describeMeasure, measureOf } from './policy.js';
import { coverageGap } from './coverage.js';
import { gateImprovement, predictImprovement } from './improvement.js';
import { computeStats } from './stats.js';
import type {
  ChosenPod,
  CpuSamples,
  Decision,
  DeploymentFacts,
  PodFacts,
  Policy,
  SkipReason,
} from './types.js';

/** A gate's answer: undefined lets the target through, otherwise the first reason to stop. */
export type GateResult = { reason: SkipReason; detail: string } | undefined;

/**
 * The checks that need no CPU data, in the order they are applied. They run before the
 * Prometheus query so that an alert storm inside a cooldown costs no queries.
 */
export function gateDeployment(deployment: DeploymentFacts | undefined): GateResult {
  if (!deployment) return { reason: 'not-found', detail: 'the Deployment does not exist' };
  if (deployment.optedOut) {
    return {
      reason: 'opted-out',
      detail: 'annotation pod-rebalancer.io/enabled is "false"',
    };
  }
  if (deployment.rolloutInProgress) {
    return {
      reason: 'rollout-in-progress',
      detail:
        'a rollout is in progress (generation not observed or replicas not all updated and ready)',
    };
  }
  return undefined;
}

interface EligiblePod {
  pod: PodFacts;
  cpu: number;
}

/**
 * Why a pod is left out of both the statistics and the candidates, or undefined if it counts.
 * A young pod shows low CPU because it is new, not because it is starved: counting it would
 * make every rebalance trigger the next one.
 */
export function ineligibility(
  pod: PodFacts,
  cpu: number | undefined,
  policy: Policy,
  now: Date,
): string | undefined {
  if (pod.phase !== 'Running') return `phase ${pod.phase}`;
  if (!pod.ready) return 'not ready';
  if (pod.terminating) return 'terminating';
  if (!pod.startedAt || now.getTime() - pod.startedAt.getTime() < policy.minPodAgeMs) {
    return 'younger than MIN_POD_AGE';
  }
  if (cpu === undefined || !Number.isFinite(cpu) || cpu < 0) return 'no CPU sample';
  return undefined;
}

function eligiblePods(
  pods: readonly PodFacts[],
  samples: CpuSamples,
  policy: Policy,
  now: Date,
): EligiblePod[] {
  const eligible: EligiblePod[] = [];
  for (const pod of pods) {
    const cpu = samples.get(pod.name);
    if (ineligibility(pod, cpu, policy, now) === undefined) eligible.push({ pod, cpu: cpu! });
  }
  return eligible;
}

/**
 * The highest- and the lowest-CPU pod. Ties go to the pod whose name sorts first, so that the
 * same facts always give the same answer.
 */
export function selectHighestAndLowest(eligible: readonly EligiblePod[]): ChosenPod[] {
  let highest = eligible[0];
  let lowest = eligible[0];
  if (!highest || !lowest) return [];
  for (const candidate of eligible) {
    if (ranksBefore(candidate, highest, candidate.cpu - highest.cpu)) highest = candidate;
    if (ranksBefore(candidate, lowest, lowest.cpu - candidate.cpu)) lowest = candidate;
  }
  const chosen: ChosenPod[] = [choose(highest, 'highest')];
  if (lowest.pod.name !== highest.pod.name) chosen.push(choose(lowest, 'lowest'));
  return chosen;
}

function ranksBefore(candidate: EligiblePod, current: EligiblePod, margin: number): boolean {
  return margin > 0 || (margin === 0 && candidate.pod.name < current.pod.name);
}

function choose(entry: EligiblePod, role: ChosenPod['role']): ChosenPod {
  return { name: entry.pod.name, uid: entry.pod.uid, cpu: entry.cpu, role };
}

/**
 * The decision: pure, from the pods, their fresh CPU samples and the policy. Only Running,
 * Ready, non-terminating pods older than MIN_POD_AGE with a sample count, in the statistics as
 * well as as candidates; unless MIN_SAMPLE_COVERAGE of those pods have a sample, nothing is
 * decided (incomplete-metrics). At most two pods are chosen: the highest and the lowest. The
 * policy's measure (stddev in cores, or stddev ÷ mean) must be above its threshold, and be
 * predicted to fall by at least MIN_IMPROVEMENT once those two pods are replaced.
 */
export function decide(
  pods: readonly PodFacts[],
  samples: CpuSamples,
  policy: Policy,
  now: Date,
): Decision {
  const eligible = eligiblePods(pods, samples, policy, now);
  const stats = computeStats(eligible.map((e) => e.cpu));
  const counted = pods.filter((p) => ineligibility(p, 0, policy, now) === undefined);
  const gap = coverageGap(
    counted.map((p) => p.name),
    samples,
    policy.minSampleCoverage,
  );
  if (gap) return { act: false, ...gap, stats };
  const needed = Math.max(policy.minPods, 2);
  if (eligible.length < needed) {
    return {
      act: false,
      reason: 'too-few-pods',
      detail: `${eligible.length} of ${pods.length} pods are eligible, ${needed} needed`,
      stats,
    };
  }
  const measure = policy.measure ?? 'stddev';
  const value = measureOf(measure, stats);
  if (!(value > policy.threshold)) {
    return {
      act: false,
      reason: 'below-threshold',
      detail: `${describeMeasure(measure, value)} is not above ${policy.threshold}`,
      stats,
    };
  }
  const chosen = selectHighestAndLowest(eligible);
  const unhelpful = gateImprovement(
    predictImprovement(
      eligible.map((e) => e.cpu),
      chosen.map((p) => p.cpu),
      measure,
    ),
    measure,
    policy.minImprovement ?? DEFAULT_MIN_IMPROVEMENT,
  );
  if (unhelpful) return { act: false, ...unhelpful, stats };
  return { act: true, stats, pods: chosen };
}
