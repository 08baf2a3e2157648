import type { GateResult } from './decide.js';

/** How a past action turned out, judged when the Deployment is looked at again. */
export type Effect = 'effective' | 'ineffective';

/** What was kept of an action to judge it later. */
export interface PastAction {
  at: Date;
  stddev: number;
  dryRun: boolean;
}

export interface Judgement {
  effect: Effect;
  /** stddev now / stddev before the action. */
  ratio: number;
}

export interface EffectPolicy {
  baseCooldownMs: number;
  maxCooldownMs: number;
  /** Share by which the stddev must fall, e.g. 0.3. */
  effectiveReduction: number;
  /** Consecutive ineffective actions after which acting stops. */
  ineffectiveLimit: number;
}

/** What is known when the Deployment is looked at again, a cooldown or more after the action. */
export interface Followup {
  stddev: number;
  /** When the alert that brought us back started firing, if known. */
  alertStartedAt: Date | undefined;
  /** The cooldown that followed the action. */
  cooldownMs: number;
}

/**
 * Judges an action. It was effective if the imbalance stayed away at least one cooldown (the
 * alert that brings us back started firing only after that), or if the stddev over pods old
 * enough to count is now at least `effectiveReduction` below what it was. A dry run removed
 * nothing, so there is nothing to judge.
 */
export function judgeAction(
  action: PastAction,
  followup: Followup,
  policy: EffectPolicy,
): Judgement | undefined {
  if (action.dryRun || !(action.stddev > 0) || !Number.isFinite(followup.stddev)) return undefined;
  const ratio = followup.stddev / action.stddev;
  const stayedAway =
    followup.alertStartedAt !== undefined &&
    followup.alertStartedAt.getTime() >= action.at.getTime() + followup.cooldownMs;
  const fell = ratio <= 1 - policy.effectiveReduction;
  return { effect: stayedAway || fell ? 'effective' : 'ineffective', ratio };
}

export interface Backoff {
  consecutiveIneffective: number;
  cooldownMs: number;
  /** True once `ineffectiveLimit` actions in a row did not help: stop until a person clears it. */
  stopped: boolean;
}

/**
 * The cooldown after the next action: it doubles with each consecutive ineffective action, up
 * to `maxCooldownMs`; one effective action resets it. Unjudged (no previous action, or a dry
 * run) leaves the count as it was.
 */
export function nextBackoff(
  consecutiveIneffective: number,
  effect: Effect | undefined,
  policy: EffectPolicy,
): Backoff {
  const count =
    effect === 'ineffective'
      ? consecutiveIneffective + 1
      : effect === 'effective'
        ? 0
        : consecutiveIneffective;
  const cooldownMs = Math.min(policy.maxCooldownMs, policy.baseCooldownMs * 2 ** count);
  return { consecutiveIneffective: count, cooldownMs, stopped: count >= policy.ineffectiveLimit };
}

/** Stops a target whose Deployment pod-rebalancer gave up on, until a person clears the mark. */
export function gateStopped(stopped: string | undefined, howToClear: string): GateResult {
  if (stopped === undefined) return undefined;
  return { reason: 'ineffective', detail: `${stopped}; to resume: ${howToClear}` };
}
