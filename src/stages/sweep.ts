import type { Logger } from '../adapters/logger.js';
import { staleReason, type StaleReason } from '../core/sweep.js';
import type { Metrics } from '../metrics.js';
import type { Cluster, CooldownEntry, CooldownStore } from '../ports.js';

export interface SweepDeps {
  cluster: Pick<Cluster, 'getDeployment'>;
  cooldown: Pick<CooldownStore, 'list' | 'remove'>;
  telemetry: Pick<Metrics, 'leasesSwept'>;
  logger: Logger;
  /** DRY_RUN: say what would be swept, delete nothing. */
  dryRun: boolean;
}

export interface Swept {
  namespace: string;
  deployment: string;
  reason: StaleReason;
  result: 'deleted' | 'would-delete' | 'changed';
}

/**
 * Deletes the cooldown state of Deployments that are gone or were created again under the same
 * name. A Lease cannot be owned across namespaces, so nothing else removes it. Each delete is
 * conditional on the version judged: state taken meanwhile for a new Deployment stays. A
 * Deployment that cannot be read (an API error) is left alone until the next sweep.
 */
export async function sweepStaleCooldowns(deps: SweepDeps): Promise<Swept[]> {
  const swept: Swept[] = [];
  for (const entry of await deps.cooldown.list()) {
    let reason: StaleReason | undefined;
    try {
      reason = staleReason(entry.deploymentUid, await deps.cluster.getDeployment(entry.target));
    } catch (error) {
      deps.logger.warn('sweep: cannot read the Deployment; its Lease stays', {
        ...entry.target,
        error: (error as Error).message,
      });
      continue;
    }
    if (reason) swept.push(await sweepOne(entry, reason, deps));
  }
  return swept;
}

async function sweepOne(
  entry: CooldownEntry,
  reason: StaleReason,
  deps: SweepDeps,
): Promise<Swept> {
  const { namespace, deployment } = entry.target;
  let result: Swept['result'] = 'would-delete';
  if (!deps.dryRun) result = (await deps.cooldown.remove(entry)) ? 'deleted' : 'changed';
  deps.telemetry.leasesSwept.inc({ reason, result });
  deps.logger.info(
    result === 'would-delete'
      ? 'sweep: dry run, would delete stale cooldown Lease'
      : 'sweep: stale cooldown Lease',
    { namespace, deployment, reason, result },
  );
  return { namespace, deployment, reason, result };
}

/** Every `intervalMs`, sweeps once; errors are logged, never thrown. Returns a stop function. */
export function sweepPeriodically(deps: SweepDeps, intervalMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepStaleCooldowns(deps)
      .catch((error: unknown) =>
        deps.logger.warn('sweep failed; next attempt at the next interval', {
          error: (error as Error).message,
        }),
      )
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
