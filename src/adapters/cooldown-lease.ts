import { createHash } from 'node:crypto';
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { DeploymentFacts } from '../core/types.js';
import type { ActionRecord, CooldownRecord, CooldownStart, CooldownStore } from '../ports.js';
import { statusOf, toUpstreamError, type KubeApis } from './kubernetes.js';

export const LAST_ACTION_ANNOTATION = 'pod-rebalancer.io/last-action';
const PREFIX = 'pod-rebalancer-';
const MAX_NAME = 253;

/** The Lease that holds a Deployment's cooldown: `pod-rebalancer-<deployment>` in its namespace. */
export function leaseName(deployment: string): string {
  const name = PREFIX + deployment;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash('sha256').update(deployment).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_NAME - 11)}-${hash}`;
}

function parseLastAction(lease: V1Lease): ActionRecord | undefined {
  const text = lease.metadata?.annotations?.[LAST_ACTION_ANNOTATION];
  if (!text) return undefined;
  try {
    return JSON.parse(text) as ActionRecord;
  } catch {
    return undefined;
  }
}

function toRecord(lease: V1Lease): CooldownRecord {
  const spec = lease.spec ?? {};
  return {
    version: lease.metadata?.resourceVersion ?? '',
    holder: spec.holderIdentity ?? '',
    startedAt: spec.acquireTime ? new Date(spec.acquireTime) : new Date(0),
    durationMs: (spec.leaseDurationSeconds ?? 0) * 1000,
    lastAction: parseLastAction(lease),
  };
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
      if (statusOf(error) === 409) return false;
      throw toUpstreamError(
        error,
        `taking the cooldown Lease of ${deployment.namespace}/${deployment.name}`,
      );
    }
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
        annotations: { [LAST_ACTION_ANNOTATION]: JSON.stringify(next.action) },
        // Garbage-collected with its Deployment.
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.name, uid: deployment.uid },
        ],
      },
      spec: {
        holderIdentity: next.holder,
        acquireTime: at,
        renewTime: at,
        leaseDurationSeconds: Math.ceil(next.durationMs / 1000),
      },
    };
  }
}
