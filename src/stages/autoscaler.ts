import { gateScaling } from '../core/autoscaler.js';
import type { GateResult } from '../core/decide.js';
import type { DeploymentFacts } from '../core/types.js';
import type { AutoscalerSource } from '../ports.js';

/**
 * `scaling` while a HorizontalPodAutoscaler is moving the Deployment (core/autoscaler.ts). Read
 * from a watch cache: a cache may say skip, and an HPA that has just started a scale-up shows
 * as a rollout in the Deployment itself (its replica counts differ), which is read fresh.
 */
export async function checkScaling(
  deployment: DeploymentFacts,
  now: Date,
  deps: { autoscalers?: AutoscalerSource; settings: { effect: { baseCooldownMs: number } } },
): Promise<GateResult> {
  if (!deps.autoscalers) return undefined;
  const autoscalers = await deps.autoscalers.autoscalers(deployment.namespace);
  return gateScaling(autoscalers, deployment, {
    now,
    cooldownMs: deps.settings.effect.baseCooldownMs,
  });
}
