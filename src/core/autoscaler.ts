/**
 * Whether an autoscaler is moving the Deployment. Restarting pods while a
 * HorizontalPodAutoscaler scales it fights it: the new pods skew the CPU average it reads.
 * KEDA's ScaledObjects drive an HPA of their own, so they are covered too. Pure: no I/O.
 */
import { formatDuration } from './duration.js';
import type { DeploymentFacts } from './types.js';

/** What the gate reads of one HorizontalPodAutoscaler (autoscaling/v2). */
export interface AutoscalerFacts {
  namespace: string;
  name: string;
  /** spec.scaleTargetRef: what it scales. */
  target: { kind: string; name: string };
  /** status.desiredReplicas: what it last asked for. */
  desiredReplicas: number;
  /** status.currentReplicas, as it last saw them (omitted by the API server when 0). */
  currentReplicas: number;
  /** status.lastScaleTime: when it last changed the replica count. */
  lastScaleTime: Date | undefined;
}

/**
 * Whether the HPA scales this Deployment. The target's API group is not compared: a
 * `Deployment` of another group with the same name can only make us skip, never act.
 */
function scalesDeployment(hpa: AutoscalerFacts, deployment: DeploymentFacts): boolean {
  return (
    hpa.namespace === deployment.namespace &&
    hpa.target.kind === 'Deployment' &&
    hpa.target.name === deployment.name
  );
}

/**
 * `scaling` while an HPA targeting the Deployment wants another replica count than it has, or
 * changed it less than `cooldownMs` (COOLDOWN) ago; undefined when none is moving it.
 */
export function gateScaling(
  autoscalers: readonly AutoscalerFacts[],
  deployment: DeploymentFacts,
  clock: { now: Date; cooldownMs: number },
): { reason: 'scaling'; detail: string } | undefined {
  for (const hpa of autoscalers) {
    if (!scalesDeployment(hpa, deployment)) continue;
    const why = movingBecause(hpa, clock);
    if (why) return { reason: 'scaling', detail: `HorizontalPodAutoscaler ${hpa.name} ${why}` };
  }
  return undefined;
}

function movingBecause(
  hpa: AutoscalerFacts,
  { now, cooldownMs }: { now: Date; cooldownMs: number },
): string | undefined {
  const counts = `${hpa.desiredReplicas} desired, ${hpa.currentReplicas} current`;
  if (hpa.desiredReplicas !== hpa.currentReplicas) return `is scaling (${counts} replicas)`;
  const sinceMs = hpa.lastScaleTime && now.getTime() - hpa.lastScaleTime.getTime();
  if (sinceMs === undefined || sinceMs >= cooldownMs) return undefined;
  return (
    `scaled the Deployment at ${hpa.lastScaleTime!.toISOString()}, within COOLDOWN ` +
    `${formatDuration(cooldownMs)} (${counts} replicas)`
  );
}
