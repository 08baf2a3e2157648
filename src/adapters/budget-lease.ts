import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { BudgetEntry } from '../core/budget.js';
import type { ActionBudgetStore, BudgetRecord } from '../ports.js';
import { UpstreamError } from '../errors.js';
import { statusOf, toUpstreamError, type KubeApis } from './kube-api.js';

/** The one Lease that holds the cluster-wide action budget, in STATE_NAMESPACE. */
export const BUDGET_LEASE_NAME = 'pod-rebalancer-action-budget';
/** The recent actions, as a JSON list of {id, at, deployment, dryRun}. */
export const BUDGET_ANNOTATION = 'pod-rebalancer.io/actions';

/**
 * The recorded actions, or undefined when the annotation is not such a list. An unreadable list
 * must not count as empty: that would silently reset the cluster-wide cap.
 */
function parseEntries(text: string | undefined): BudgetEntry[] | undefined {
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const entries = parsed.map((entry: BudgetEntry & { at: string }) => ({
    ...entry,
    at: new Date(entry?.at),
  }));
  const readable = entries.every(
    (entry) => typeof entry.id === 'string' && !Number.isNaN(entry.at.getTime()),
  );
  return readable ? entries : undefined;
}

/**
 * The ActionBudgetStore as a coordination.k8s.io/v1 Lease. Creating it, or replacing it at the
 * resourceVersion we read, is a compare-and-swap in the API server: of two replicas that race
 * for the last slot, exactly one write succeeds and the other sees 409 and reads again.
 */
export class LeaseActionBudgetStore implements ActionBudgetStore {
  constructor(
    private readonly apis: KubeApis,
    private readonly namespace: string,
  ) {}

  async read(): Promise<BudgetRecord | undefined> {
    try {
      const lease = await this.apis.coordination.readNamespacedLease({
        namespace: this.namespace,
        name: BUDGET_LEASE_NAME,
      });
      const entries = parseEntries(lease.metadata?.annotations?.[BUDGET_ANNOTATION]);
      if (!entries) throw this.unreadable();
      return { version: lease.metadata?.resourceVersion ?? '', entries };
    } catch (error) {
      if (error instanceof UpstreamError) throw error;
      if (statusOf(error) === 404) return undefined;
      throw toUpstreamError(error, `reading the action budget Lease ${this.where()}`);
    }
  }

  async write(
    previous: BudgetRecord | undefined,
    entries: readonly BudgetEntry[],
    holder: string,
  ): Promise<boolean> {
    const body = this.leaseBody(previous, entries, holder);
    try {
      if (previous) {
        await this.apis.coordination.replaceNamespacedLease({
          namespace: this.namespace,
          name: BUDGET_LEASE_NAME,
          body,
        });
      } else {
        await this.apis.coordination.createNamespacedLease({ namespace: this.namespace, body });
      }
      return true;
    } catch (error) {
      // 409: created or changed since we read it; 404: deleted since. Read again.
      const status = statusOf(error);
      if (status === 409 || status === 404) return false;
      throw toUpstreamError(error, `writing the action budget Lease ${this.where()}`);
    }
  }

  /** Fails closed: no action until a person repairs or deletes the Lease (which resets it). */
  private unreadable(): UpstreamError {
    return new UpstreamError(
      'kubernetes',
      'client',
      false,
      `the action budget Lease ${this.where()} has an unreadable ${BUDGET_ANNOTATION} annotation; ` +
        `nothing is acted on until it is fixed or the Lease deleted (kubectl -n ${this.namespace} delete lease ${BUDGET_LEASE_NAME})`,
    );
  }

  private where(): string {
    return `${this.namespace}/${BUDGET_LEASE_NAME}`;
  }

  private leaseBody(
    previous: BudgetRecord | undefined,
    entries: readonly BudgetEntry[],
    holder: string,
  ): V1Lease {
    const now = new V1MicroTime(Date.now());
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: BUDGET_LEASE_NAME,
        namespace: this.namespace,
        resourceVersion: previous?.version,
        labels: { 'app.kubernetes.io/managed-by': 'pod-rebalancer' },
        annotations: { [BUDGET_ANNOTATION]: JSON.stringify(entries) },
      },
      spec: { holderIdentity: holder, renewTime: now },
    };
  }
}
