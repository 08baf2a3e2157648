import { gateFresh } from '../core/fresh.js';
import type { GateResult } from '../core/decide.js';
import type { Scope } from '../core/scope.js';
import type { DeploymentFacts } from '../core/types.js';
import type { Cluster } from '../ports.js';

export interface FreshDeps {
  cluster: Pick<Cluster, 'readDeployment'>;
  settings: { scope: Scope };
}

export type Confirmed =
  { ok: true; deployment: DeploymentFacts } | { ok: false; gate: NonNullable<GateResult> };

/**
 * The cache may say skip; only the API server may say act. Before the first irreversible write
 * for a Deployment, its copy on the API server is read and the checks that a lagging or silent
 * watch could have missed are made again on it (opt-out, rollout, scope, same uid and selector).
 */
export async function confirmOnApiServer(
  measured: DeploymentFacts,
  deps: FreshDeps,
): Promise<Confirmed> {
  const target = { namespace: measured.namespace, deployment: measured.name };
  const fresh = await deps.cluster.readDeployment(target);
  const gate = gateFresh(measured, fresh, deps.settings.scope);
  return gate || !fresh ? { ok: false, gate: gate! } : { ok: true, deployment: fresh };
}
