/**
 * The check on the API server's own copy of a Deployment, made just before the first
 * irreversible write: the cache may say skip, only the API server may say act. Pure.
 */
import { gateDeployment, type GateResult } from './decide.js';
import { gateScope, type Scope } from './scope.js';
import type { DeploymentFacts, LabelSelector } from './types.js';

function sameSelector(a: LabelSelector, b: LabelSelector): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Stops an action when the fresh copy says no: gone, opted out, mid-rollout, out of scope, or
 * not the Deployment that was measured (another uid: deleted and created again; another
 * selector: the pods measured may not be its own). Both read as `not-found`: the Deployment
 * the decision was made for is not there any more.
 */
export function gateFresh(
  measured: DeploymentFacts,
  fresh: DeploymentFacts | undefined,
  scope: Scope,
): GateResult {
  const gone = gateDeployment(fresh);
  if (gone || !fresh) return gone;
  if (fresh.uid !== measured.uid || !sameSelector(fresh.selector, measured.selector)) {
    return {
      reason: 'not-found',
      detail:
        'the Deployment measured was replaced since (its uid or selector changed on the API server)',
    };
  }
  return gateScope(scope, fresh);
}
