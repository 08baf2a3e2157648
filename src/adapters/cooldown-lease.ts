import { createHash } from 'node:crypto';
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { DeploymentFacts } from '../core/types.js';
import type { ActionRecord, CooldownRecord, CooldownStart, CooldownStore } from '../ports.js';
import { statusOf, toUpstreamError, type KubeApis } from './kubernetes.js';

export const LAST_ACTION_ANNOTATION = 'pod-rebalancer.io/last-action';
export const CONSECUTIVE_INEFFECTIVE_ANNOTATION = 'pod-rebalancer.io/consecutive-ineffective';
/** Present while pod-rebalancer refuses to act on the Deployment; removing it resumes. */
export const INEFFECTIVE_ANNOTATION = 'pod-rebalancer.io/ineffective';
const PREFIX = 'pod-rebalancer-';
const MAX_NAME = 253;

/** The Lease that holds a Deployment's cooldown: `pod-rebalancer-<deployment>` in its namespace. */
export function leaseName(deployment: string): string {
  const name = PREFIX + deployment;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash('sha256').update(deployment).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_NAME - 11)}-${hash}`;
}

function parseLastAction(text: string | undefined): ActionRecord | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as ActionRecord & { at: string };
    return { ...parsed, at: new Date(parsed.at) };
  } catch {
    return undefined;
  }
}

function toRecord(lease: V1Lease): CooldownRecord {
  const { holderIdentity = '', acquireTime, leaseDurationSeconds = 0 } = lease.spec ?? {};
  const { resourceVersion = '', annotations = {} } = lease.metadata ?? {};
  return {
    version: resourceVersion,
    holder: holderIdentity,
    // Read back as a string or a Date depending on the client's deserializer.
    startedAt: new Date(acquireTime ?? 0),
    durationMs: leaseDurationSeconds * 1000,
    lastAction: parseLastAction(annotations[LAST_ACTION_ANNOTATION]),
    consecutiveIneffective: Number(annotations[CONSECUTIVE_INEFFECTIVE_ANNOTATION] ?? 0) || 0,
    stopped: annotations[INEFFECTIVE_ANNOTATION],
  };
}

function annotationsOf(next: CooldownStart): Record<string, string> {
  const annotations: Record<string, string> = {
    [CONSECUTIVE_INEFFECTIVE_ANNOTATION]: String(next.consecutiveIneffective),
  };
  if (next.lastAction) annotations[LAST_ACTION_ANNOTATION] = JSON.stringify(next.lastAction);
  if (next.stopped !== undefined) annotations[INEFFECTIVE_ANNOTATION] = next.stopped;
  return annotations;
}

/**
 * The CooldownStore as a coordination.k8s.io/v1 Lease per Deployment. Creating it, or replacing
 * it at the resourceVersion we read, is a compare-and-swap in the API server: of two replicas
 * (or two retries) that race, exactly one succeeds and the other sees 409.
 */
export class LeaseCooldownStore implements CooldownStore {
  constructor(private readonly apis: KubeApis) {}

  async read(deployment: DeploymentFacts): Promise<CooldownRecord | undefined> {
    try {
      const lease = await this.apis.coordination.readNamespacedLease({
        namespace: deployment.namespace,
        name: leaseName(deployment.name),
      });
      return toRecord(lease);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw toUpstreamError(
        error,
        `reading the cooldown Lease of ${deployment.namespace}/${deployment.name}`,
      );
    }
  }

  async start(
    deployment: DeploymentFacts,
    previous: CooldownRecord | undefined,
    next: CooldownStart,
  ): Promise<boolean> {
    const body = this.leaseBody(deployment, previous, next);
    const name = leaseName(deployment.name);
    try {
      if (previous) {
        await this.apis.coordination.replaceNamespacedLease({
          namespace: deployment.namespace,
          name,
          body,
        });
      } else {
        await this.apis.coordination.createNamespacedLease({
          namespace: deployment.namespace,
          body,
        });
      }
      return true;
    } catch (error) {
      // 409: created meanwhile (AlreadyExists) or changed since we read it (Conflict).
      // 404: deleted since we read it. Either way someone else changed it: we do not act.
      const status = statusOf(error);
      if (status === 409 || status === 404) return false;
      throw toUpstreamError(
        error,
        `taking the cooldown Lease of ${deployment.namespace}/${deployment.name}`,
      );
    }
  }

  howToResume(deployment: DeploymentFacts): string {
    return `kubectl -n ${deployment.namespace} annotate lease ${leaseName(deployment.name)} ${INEFFECTIVE_ANNOTATION}-`;
  }

  private leaseBody(
    deployment: DeploymentFacts,
    previous: CooldownRecord | undefined,
    next: CooldownStart,
  ): V1Lease {
    const at = new V1MicroTime(next.startedAt.getTime());
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: leaseName(deployment.name),
        namespace: deployment.namespace,
        resourceVersion: previous?.version,
        labels: { 'app.kubernetes.io/managed-by': 'pod-rebalancer' },
        annotations: annotationsOf(next),
        // Garbage-collected with its Deployment.
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.name, uid: deployment.uid },
        ],
      },
      spec: {
        holderIdentity: next.holder,
        acquireTime: at,
        renewTime: at,
        // The API server rejects a duration of 0 (the stop mark has no cooldown): leave it out.
        leaseDurationSeconds: next.durationMs > 0 ? Math.ceil(next.durationMs / 1000) : undefined,
      },
    };
  }
}
