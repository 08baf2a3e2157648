import type { ChosenPod, DeploymentFacts, Stats } from '../core/types.js';
import { countUpstreamError } from '../metrics.js';
import type { DeploymentEvent, RemovalResult } from '../ports.js';
import type { PodReport, PodResult } from '../report.js';
import { eventNameFor, recordEvent, type EventDeps } from './events.js';

/** How pods are removed: the Eviction API or a direct delete, or (dry run) not at all. */
export interface ActPolicy {
  action: 'evict' | 'delete';
  dryRun: boolean;
}

export const MAX_PODS_PER_ACTION = 2;

const DONE: Record<ActPolicy['action'], PodResult> = { evict: 'evicted', delete: 'deleted' };
const WOULD: Record<ActPolicy['action'], PodResult> = {
  evict: 'would-evict',
  delete: 'would-delete',
};

/**
 * The one place that removes pods. Dry run, the two-pod cap, Eviction vs delete, PDB refusals,
 * the Event and the metric live here and nowhere else.
 *
 * Eviction is the default because it honours PodDisruptionBudgets: a 429 is recorded as
 * pdb-blocked and the next pod is still tried, never the same one again. Any other failure
 * stops the action: the API server is misbehaving and the cooldown already holds.
 */
export async function removePods(
  deployment: DeploymentFacts,
  chosen: { stats: Stats; pods: readonly ChosenPod[] },
  policy: ActPolicy & {
    now: Date;
    /**
     * Set for a removal that is tried again and again (rotation step 2 while a
     * PodDisruptionBudget refuses, every ROTATION_CHECK_MS): its Event is said once per kind
     * for this key (the rotation's start), not once per try.
     */
    sayOnceFor?: Date;
  },
  deps: EventDeps,
): Promise<PodReport[]> {
  const reports: PodReport[] = [];
  let stopped = false;
  for (const pod of chosen.pods.slice(0, MAX_PODS_PER_ACTION)) {
    const base = { name: pod.name, cpu: pod.cpu, role: pod.role };
    if (stopped) {
      reports.push({ ...base, result: 'not-attempted' });
      continue;
    }
    const result = await removeOne(deployment, pod, policy, deps);
    stopped = result === 'failed';
    reports.push({ ...base, result });
  }
  const event = actionEvent(deployment, chosen.stats, reports, policy);
  const once = policy.sayOnceFor?.getTime();
  const name = once === undefined ? undefined : eventNameFor(deployment, event.reason, once);
  await recordEvent({ ...event, name }, deps);
  return reports;
}

/** What removePods would do in dry run, without doing anything (not even the Event). */
export function plannedRemovals(
  chosen: readonly ChosenPod[],
  action: ActPolicy['action'],
): PodReport[] {
  return chosen
    .slice(0, MAX_PODS_PER_ACTION)
    .map((pod) => ({ name: pod.name, cpu: pod.cpu, role: pod.role, result: WOULD[action] }));
}

async function removeOne(
  deployment: DeploymentFacts,
  pod: ChosenPod,
  policy: ActPolicy,
  deps: EventDeps,
): Promise<PodResult> {
  if (policy.dryRun) return WOULD[policy.action];
  const ref = { namespace: deployment.namespace, name: pod.name, uid: pod.uid };
  let result: RemovalResult;
  try {
    result =
      policy.action === 'evict'
        ? await deps.cluster.evictPod(ref)
        : await deps.cluster.deletePod(ref);
  } catch (error) {
    countUpstreamError(deps.telemetry, error);
    deps.logger.warn('pod removal failed', { pod: pod.name, error: (error as Error).message });
    return 'failed';
  }
  if (result !== 'removed') return result;
  deps.telemetry.podsRemoved.inc({
    namespace: deployment.namespace,
    deployment: deployment.name,
    action: policy.action,
  });
  return DONE[policy.action];
}

const REMOVED: ReadonlySet<PodResult> = new Set([
  'evicted',
  'deleted',
  'would-evict',
  'would-delete',
]);

/** Whether any pod was removed (or, in dry run, would have been). */
export function anyRemoved(pods: readonly PodReport[]): boolean {
  return pods.some((p) => REMOVED.has(p.result));
}

function describe(pods: readonly PodReport[]): string {
  return pods
    .map((p) => `${p.name} (${p.role}, ${p.cpu.toFixed(3)} cores): ${p.result}`)
    .join('; ');
}

/** The Event that tells `kubectl describe deployment` readers what was done and why. */
function actionEvent(
  deployment: DeploymentFacts,
  stats: Stats,
  pods: readonly PodReport[],
  policy: ActPolicy & { now: Date },
): DeploymentEvent {
  const why = `CPU stddev ${stats.stddev.toFixed(3)} cores over ${stats.count} pods (mean ${stats.mean.toFixed(3)})`;
  const action = policy.action === 'evict' ? 'Evict' : 'Delete';
  const base = { deployment, action, at: policy.now };
  if (policy.dryRun) {
    return {
      ...base,
      type: 'Normal',
      reason: 'RebalanceDryRun',
      message: `Dry run, ${why}: ${describe(pods)}`,
    };
  }
  if (anyRemoved(pods)) {
    return { ...base, type: 'Normal', reason: 'Rebalanced', message: `${why}: ${describe(pods)}` };
  }
  if (pods.some((p) => p.result === 'pdb-blocked')) {
    return {
      ...base,
      type: 'Warning',
      reason: 'RebalanceBlocked',
      message: `A PodDisruptionBudget refused, ${why}: ${describe(pods)}`,
    };
  }
  return {
    ...base,
    type: 'Warning',
    reason: 'RebalanceFailed',
    message: `${why}: ${describe(pods)}`,
  };
}
