import type { Logger } from '../adapters/logger.js';
import type { DeploymentFacts } from '../core/types.js';
import { countUpstreamError, type Metrics } from '../metrics.js';
import type { Cluster, DeploymentEvent } from '../ports.js';

/**
 * Saying things on the Deployment, for `kubectl describe deployment` readers: every stage's
 * Events (an action, a guard or budget holding one back, a rotation ending, a stop) go through
 * here, as every removal goes through act.ts.
 */
export interface EventDeps {
  cluster: Cluster;
  telemetry: Metrics;
  logger: Logger;
}

/**
 * A name for an Event said at most once per window, the same in every replica: derived from the
 * Deployment's uid, the reason and the window bucket. Creating it twice is a 409 (already said),
 * so no state is needed to say it once. Kept a valid DNS subdomain of at most 253 characters.
 */
export function onceEventName(
  deployment: Pick<DeploymentFacts, 'name' | 'uid'>,
  reason: string,
  windowMs: number,
  now: Date,
): string {
  return eventNameFor(deployment, reason, Math.floor(now.getTime() / windowMs));
}

/** onceEventName for any key: each (Deployment, reason, key) is said once. */
export function eventNameFor(
  deployment: Pick<DeploymentFacts, 'name' | 'uid'>,
  reason: string,
  key: number,
): string {
  const name = deployment.name.slice(0, 180).replace(/[.-]+$/, '');
  return `${name}.${reason.toLowerCase()}.${key}.${deployment.uid.toLowerCase()}`;
}

/** Records an Event on the Deployment. A failure to record does not undo or fail what it tells. */
export async function recordEvent(event: DeploymentEvent, deps: EventDeps): Promise<void> {
  try {
    await deps.cluster.recordEvent(event);
  } catch (error) {
    countUpstreamError(deps.telemetry, error);
    deps.logger.warn('could not record the Event', {
      reason: event.reason,
      error: (error as Error).message,
    });
  }
}
