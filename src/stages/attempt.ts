import { nextBackoff, type EffectPolicy } from '../core/effect.js';
import type { DeploymentFacts } from '../core/types.js';
import type { Logger } from '../adapters/logger.js';
import type { CooldownRecord, CooldownStore } from '../ports.js';
import type { PodReport } from '../report.js';
import type { Slot } from './budget.js';

export interface AttemptDeps {
  cooldown: CooldownStore;
  settings: { effect: EffectPolicy };
  identity: string;
  logger: Logger;
}

/** An attempt that removed no pod: when, what became of each pod, and the budget slot it took. */
export interface Attempt {
  at: Date;
  pods: readonly PodReport[];
  slot: Extract<Slot, { taken: true }>;
}

/**
 * An attempt that removed no pod (every eviction refused by a PodDisruptionBudget, failed, or
 * the pods already gone) is not an action: judging it later would count a restart that never
 * happened as ineffective, lengthen the cooldown and in the end stop acting with nothing done.
 * So its budget slot goes back, and its Lease goes back to the state before it (the last real
 * action and the count of ineffective ones), keeps the cooldown that count gives, so a refusing
 * PDB is not asked again at every notification, and records the attempt on its own.
 * Best effort: if the Lease changed meanwhile, another writer's state stands.
 */
export async function settleAttempt(
  deployment: DeploymentFacts,
  before: CooldownRecord | undefined,
  attempt: Attempt,
  deps: AttemptDeps,
): Promise<void> {
  await attempt.slot.release();
  try {
    const settled = await rewriteLease(deployment, before, attempt, deps);
    if (!settled) deps.logger.info('the Lease changed before the attempt could be recorded');
  } catch (error) {
    // The Lease keeps the state written before acting: a longer wait, never a second action.
    deps.logger.warn('could not record the attempt on the Lease', {
      error: (error as Error).message,
    });
  }
}

async function rewriteLease(
  deployment: DeploymentFacts,
  before: CooldownRecord | undefined,
  attempt: Attempt,
  deps: AttemptDeps,
): Promise<boolean> {
  const count = before?.consecutiveIneffective ?? 0;
  const written = await deps.cooldown.read(deployment);
  if (!written) return false;
  return deps.cooldown.start(deployment, written, {
    holder: deps.identity,
    startedAt: attempt.at,
    durationMs: nextBackoff(count, undefined, deps.settings.effect).cooldownMs,
    lastAction: before?.lastAction,
    consecutiveIneffective: count,
    stopped: undefined,
    lastAttempt: {
      at: attempt.at,
      pods: attempt.pods.map((p) => `${p.name}: ${p.result}`),
    },
  });
}
