import {
  judgeAction,
  nextBackoff,
  type Backoff,
  type EffectPolicy,
  type Judgement,
} from '../core/effect.js';
import type { DeploymentFacts, Stats } from '../core/types.js';
import type { Metrics } from '../metrics.js';
import type { CooldownRecord } from '../ports.js';

export interface Assessment {
  /** The previous action's effect, when there was one to judge. */
  judgement: Judgement | undefined;
  /** The cooldown and count that apply if we act now. */
  backoff: Backoff;
}

/**
 * Judges the previous action against the fresh stats and works out the backoff that follows.
 * A Deployment whose stop mark a person removed starts over: its old action is not judged again.
 * A one-by-one action is judged after its last step (its record's time is that step's).
 */
export function assess(
  record: CooldownRecord | undefined,
  stats: Stats,
  alertStartedAt: Date | undefined,
  policy: EffectPolicy,
): Assessment {
  const resumed =
    record !== undefined &&
    record.stopped === undefined &&
    record.consecutiveIneffective >= policy.ineffectiveLimit;
  if (!record?.lastAction || resumed)
    return { judgement: undefined, backoff: nextBackoff(0, undefined, policy) };
  // A rotation that stalled was counted as ineffective when it stalled: not judged twice.
  if (record.rotation?.end === 'stalled')
    return {
      judgement: undefined,
      backoff: nextBackoff(record.consecutiveIneffective, undefined, policy),
    };
  const judgement = judgeAction(
    record.lastAction,
    { stddev: stats.stddev, alertStartedAt, cooldownMs: record.durationMs },
    policy,
  );
  return {
    judgement,
    backoff: nextBackoff(record.consecutiveIneffective, judgement?.effect, policy),
  };
}

/** Counts a judgement and the resulting cooldown, once the Lease that records them is written. */
export function recordAssessment(
  deployment: DeploymentFacts,
  assessment: Assessment,
  telemetry: Metrics,
): void {
  const { judgement, backoff } = assessment;
  if (judgement) {
    telemetry.actionsJudged.inc({ effect: judgement.effect });
    telemetry.actionEffectRatio.observe(judgement.ratio);
  }
  telemetry.cooldown.set(
    { namespace: deployment.namespace, deployment: deployment.name },
    backoff.cooldownMs / 1000,
  );
}

/** Why pod-rebalancer stops acting on a Deployment, for the Lease mark, the Event and the report. */
export function stopMessage(backoff: Backoff, policy: EffectPolicy): string {
  return `${backoff.consecutiveIneffective} consecutive actions did not lower the CPU stddev by ${Math.round(
    policy.effectiveReduction * 100,
  )}%; pod-rebalancer stopped acting on this Deployment`;
}
