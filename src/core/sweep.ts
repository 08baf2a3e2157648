/** Why a stored cooldown no longer belongs to any Deployment. */
export type StaleReason = 'deployment-gone' | 'deployment-recreated';

/**
 * Whether state written for the Deployment with `stateUid` is stale: the Deployment is gone, or
 * a Deployment of the same name now has another uid (deleted and created again: it starts fresh).
 */
export function staleReason(
  stateUid: string,
  deployment: { uid: string } | undefined,
): StaleReason | undefined {
  if (!deployment) return 'deployment-gone';
  return deployment.uid === stateUid ? undefined : 'deployment-recreated';
}
