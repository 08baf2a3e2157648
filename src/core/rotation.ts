/**
 * Rotation: remove the two chosen pods together, or one by one (SPEC, "Rotation"). One by one,
 * step 1 removes the hottest pod; step 2 removes the coldest once the first pod's replacement
 * is Running and Ready, the Deployment has all its replicas available again, the coldest pod is
 * still the one measured, and no guard holds. The progress is stored in the Deployment's
 * cooldown Lease, so any replica can finish it. Pure: the state, the facts and `now` come in,
 * the next step and its reason go out.
 */
import { gateDeployment } from './decide.js';
import { gateNamespace, gateScope, UNSCOPED, type Scope } from './scope.js';
import type { DeploymentFacts, PodFacts, Stats } from './types.js';

export const ROTATIONS = ['together', 'one-by-one'] as const;
export type Rotation = (typeof ROTATIONS)[number];

/** A pod of a rotation: the uid pins it, so a namesake is never mistaken for it. */
export interface RotationPod {
  name: string;
  uid: string;
  cpu: number;
}

/**
 * Where a one-by-one rotation stands. `waiting`: step 1 is done, step 2 waits; `removing`: a
 * replica claimed step 2 (compare-and-swap on the Lease) and is removing the pod; `ended`: it
 * is over (see `end`).
 */
export type RotationStep = 'waiting' | 'removing' | 'ended';

/**
 * How a rotation ended. Only `stalled` counts as an ineffective action. `opted-out`,
 * `out-of-scope` and `rollout-in-progress` are the checks step 1 made on the API server's copy
 * of the Deployment (core/fresh.ts), made again for step 2; `dry-run`: DRY_RUN was turned on
 * between the steps, so nothing more is removed.
 */
export const ROTATION_ENDS = [
  'done',
  'stalled',
  'next-gone',
  'first-kept',
  'deployment-gone',
  'opted-out',
  'out-of-scope',
  'rollout-in-progress',
  'dry-run',
  'timed-out',
] as const;
export type RotationEnd = (typeof ROTATION_ENDS)[number];

/** What step 2 waits for, as `status` and the logs say it. */
export type WaitingFor = 'replacement' | 'replicas' | 'autoscaler' | 'guard' | 'another-replica';

/** A one-by-one rotation as stored in the cooldown Lease. */
export interface RotationProgress {
  step: RotationStep;
  /** Removed in step 1. */
  first: RotationPod;
  /** Removed in step 2, if it is still the same pod. */
  next: RotationPod;
  /** The uids of the Deployment's pods when step 1 was decided: any other pod is a newcomer. */
  known: string[];
  startedAt: Date;
  /** ROTATION_TIMEOUT after step 1: step 2 never happens later. */
  deadline: Date;
  /** The alert's rule and its own guard, re-evaluated before step 2 (with GUARD_QUERY). */
  alertname: string;
  guard?: string;
  /** What step 1 measured, for step 2's Event. */
  stats: Stats;
  /** The replica that claimed step 2, and when (step `removing`). */
  claim?: { holder: string; at: Date };
  /** The last refusal of step 2's eviction (a PodDisruptionBudget), retried until the deadline. */
  blocked?: string;
  end?: RotationEnd;
  endedAt?: Date;
}

/**
 * A claim older than this was left by a replica that died while removing: step 2 is decided
 * again. Removals carry the pod's uid, so a pod is never removed twice.
 */
export const CLAIM_TIMEOUT_MS = 30_000;
/**
 * Step 1 writes the progress, then removes the first pod. If that pod is still there (not
 * terminating) this long after, the removal never happened (refused, or the replica died in
 * between): the rotation ends and nothing more is removed.
 */
export const FIRST_REMOVAL_GRACE_MS = 60_000;

/** The settings step 2 is decided with: DRY_RUN and the scope (NAMESPACES, REQUIRE_OPT_IN...). */
export interface StepSettings {
  dryRun: boolean;
  scope: Scope;
}

/** What `status` decides with: it only shows, it never removes. */
const SHOWING: StepSettings = { dryRun: false, scope: UNSCOPED };

/** Facts read just now. `guard` is `unchecked` until the cluster says step 2 may go ahead. */
export interface RotationFacts {
  /** Read from the API server (`readDeployment`); undefined if gone or recreated. */
  deployment: DeploymentFacts | undefined;
  pods: readonly PodFacts[];
  guard: 'unchecked' | 'clear' | { held: string };
  /** Why an autoscaler is moving the Deployment now (the `scaling` gate's detail), if it is. */
  scaling?: string;
}

export type RotationNext =
  | { next: 'wait'; waitingFor: WaitingFor; detail: string }
  | { next: 'check-guards' }
  | { next: 'remove'; pod: RotationPod }
  | { next: 'end'; end: RotationEnd; detail: string };

/** A rotation still between its steps. */
export function inProgress(progress: RotationProgress | undefined): progress is RotationProgress {
  return progress !== undefined && progress.step !== 'ended';
}

function isUp(pod: PodFacts): boolean {
  return pod.phase === 'Running' && pod.ready && !pod.terminating;
}

/** What step 2 still waits for in the cluster (guards aside), or undefined when nothing. */
function clusterWait(
  progress: RotationProgress,
  facts: RotationFacts & { deployment: DeploymentFacts },
): { waitingFor: WaitingFor; detail: string } | undefined {
  // While the first pod is there and not terminating, step 1 removed nothing (yet): a newcomer
  // is not its replacement.
  const first = facts.pods.find((pod) => pod.uid === progress.first.uid);
  if (first && !first.terminating) {
    return {
      waitingFor: 'replacement',
      detail: `${progress.first.name} is still there and not terminating`,
    };
  }
  const known = new Set(progress.known);
  if (!facts.pods.some((pod) => !known.has(pod.uid) && isUp(pod))) {
    return {
      waitingFor: 'replacement',
      detail: `the replacement of ${progress.first.name} is not Running and Ready yet`,
    };
  }
  const { desiredReplicas: desired, availableReplicas: available = 0 } = facts.deployment;
  if (desired === undefined || available < desired) {
    return {
      waitingFor: 'replicas',
      detail: `${available} of ${desired ?? '?'} replicas available`,
    };
  }
  return undefined;
}

/**
 * The checks step 1 made on the API server's copy of the Deployment (core/fresh.ts: out of
 * scope, opted out, mid-rollout) and on its namespace, made again on the copy read for step 2,
 * with the scope this replica runs with now. The uid was compared when it was read. A rollout counts only once the cluster has `recovered` from step 1: until
 * then the missing replacement alone keeps `rolloutInProgress` true (ready below desired).
 */
function refusedByDeployment(
  deployment: DeploymentFacts,
  scope: Scope,
  recovered: boolean,
): RotationNext | undefined {
  const gate =
    gateNamespace(scope, deployment.namespace) ??
    gateScope(scope, deployment) ??
    gateDeployment(deployment);
  if (!gate || (gate.reason === 'rollout-in-progress' && !recovered)) return undefined;
  // With a Deployment at hand these gates say out-of-scope, opted-out or rollout-in-progress.
  return { next: 'end', end: gate.reason as RotationEnd, detail: gate.detail };
}

/** Ends that need no waiting: DRY_RUN, or the Deployment or one of the two pods is not what step 1 left. */
function endedByCluster(
  progress: RotationProgress,
  facts: RotationFacts,
  now: Date,
  settings: StepSettings,
): RotationNext | undefined {
  if (settings.dryRun) {
    return {
      next: 'end',
      end: 'dry-run',
      detail: `DRY_RUN is true: nothing more is removed; ${progress.next.name} is kept`,
    };
  }
  if (!facts.deployment) {
    return { next: 'end', end: 'deployment-gone', detail: 'the Deployment is gone or recreated' };
  }
  const refused = refusedByDeployment(facts.deployment, settings.scope, false);
  if (refused) return refused;
  const first = facts.pods.find((pod) => pod.uid === progress.first.uid);
  const grace = progress.startedAt.getTime() + FIRST_REMOVAL_GRACE_MS;
  if (first && !first.terminating && now.getTime() >= grace) {
    return {
      next: 'end',
      end: 'first-kept',
      detail: `${progress.first.name} was never removed; nothing more is`,
    };
  }
  const next = facts.pods.find((pod) => pod.uid === progress.next.uid);
  if (!next || next.terminating) {
    return {
      next: 'end',
      end: 'next-gone',
      detail: `${progress.next.name} is gone or replaced: the rotation ends with one removal`,
    };
  }
  return undefined;
}

/** Past the deadline, step 2 never happens: `stalled` when the cluster had not recovered. */
function expired(
  progress: RotationProgress,
  waiting: { waitingFor: WaitingFor; detail: string } | undefined,
): RotationNext {
  if (waiting && (waiting.waitingFor === 'replacement' || waiting.waitingFor === 'replicas')) {
    return {
      next: 'end',
      end: 'stalled',
      detail: `ROTATION_TIMEOUT passed and ${waiting.detail}; ${progress.next.name} is kept`,
    };
  }
  const why = waiting?.detail ?? progress.blocked ?? 'step 2 did not happen in time';
  return {
    next: 'end',
    end: 'timed-out',
    detail: `ROTATION_TIMEOUT passed (${why}); ${progress.next.name} is kept`,
  };
}

/**
 * The next move of a rotation between its steps: wait (saying for what), evaluate the guards
 * (only once the cluster allows step 2, so a waiting rotation costs no query), remove the
 * coldest pod, or end (saying why). Step 2 never happens after the deadline. The driver passes
 * its settings; `status`, which only shows, passes none.
 */
export function nextRotationStep(
  progress: RotationProgress,
  facts: RotationFacts,
  now: Date,
  settings: StepSettings = SHOWING,
): RotationNext {
  const claimed = progress.step === 'removing' && progress.claim;
  if (claimed && now.getTime() - claimed.at.getTime() < CLAIM_TIMEOUT_MS) {
    return {
      next: 'wait',
      waitingFor: 'another-replica',
      detail: `${claimed.holder} is removing ${progress.next.name}`,
    };
  }
  const ended = endedByCluster(progress, facts, now, settings);
  if (ended) return ended;
  const deployment = facts.deployment!;
  const waiting = clusterWait(progress, { ...facts, deployment });
  // Recovered from step 1: a rollout still reported now is a real one.
  const rollout = !waiting && refusedByDeployment(deployment, settings.scope, true);
  return rollout || afterRecovery(progress, facts, waiting, now);
}

/** Once nothing ends the rotation: an autoscaler, the guards, then the deadline, then step 2. */
function afterRecovery(
  progress: RotationProgress,
  { guard, scaling }: RotationFacts,
  clusterWaiting: { waitingFor: WaitingFor; detail: string } | undefined,
  now: Date,
): RotationNext {
  let waiting = clusterWaiting;
  // An autoscaler moving the Deployment holds step 2 as it holds step 1 (`scaling`): removing a
  // pod while it scales would fight it.
  if (!waiting && scaling) waiting = { waitingFor: 'autoscaler', detail: scaling };
  if (!waiting && typeof guard === 'object') waiting = { waitingFor: 'guard', detail: guard.held };
  if (now > progress.deadline) return expired(progress, waiting);
  if (waiting) return { next: 'wait', ...waiting };
  if (guard === 'unchecked') return { next: 'check-guards' };
  return { next: 'remove', pod: progress.next };
}

/** The progress once a replica has claimed step 2. */
export function claimed(progress: RotationProgress, holder: string, now: Date): RotationProgress {
  return { ...progress, step: 'removing', claim: { holder, at: now } };
}

/** The progress back to waiting after step 2's eviction was refused (retried until the deadline). */
export function released(progress: RotationProgress, blocked?: string): RotationProgress {
  return { ...progress, step: 'waiting', claim: undefined, blocked: blocked ?? progress.blocked };
}

/** The progress once the rotation is over. */
export function ended(progress: RotationProgress, end: RotationEnd, now: Date): RotationProgress {
  return { ...progress, step: 'ended', claim: undefined, end, endedAt: now };
}

/**
 * Holds new actions back while a rotation is between its steps: its last step comes first. A
 * rotation no service ended (none runs: a replay acted alone) holds only until its deadline.
 */
export function gateRotation(
  record: { rotation?: RotationProgress } | undefined,
  now: Date,
): { reason: 'cooldown'; detail: string } | undefined {
  const progress = record?.rotation;
  if (!inProgress(progress)) return undefined;
  if (now.getTime() > progress.deadline.getTime() + CLAIM_TIMEOUT_MS) return undefined;
  return {
    reason: 'cooldown',
    detail: `rotation 1 of 2 in progress: ${progress.next.name} follows ${progress.first.name} (until ${progress.deadline.toISOString()} at the latest)`,
  };
}
