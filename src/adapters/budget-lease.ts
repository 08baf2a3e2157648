import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { BudgetEntry } from '../core/budget.js';
import type { ActionBudgetStore, BudgetRecord } from '../ports.js';
import { UpstreamError } from '../errors.js';
import type { KubeApis } from './kube-api.js';
import { LeaseRegister } from './lease-cas.js';

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
  private readonly leases: LeaseRegister;

  constructor(
    apis: KubeApis,
    private readonly namespace: string,
  ) {
    this.leases = new LeaseRegister(apis, namespace);
  }

  async read(): Promise<BudgetRecord | undefined> {
    const what = `reading the action budget Lease ${this.where()}`;
    const lease = await this.leases.read(BUDGET_LEASE_NAME, what);
    if (!lease) return undefined;
    const entries = parseEntries(lease.metadata?.annotations?.[BUDGET_ANNOTATION]);
    if (!entries) throw this.unreadable();
    return { version: lease.metadata?.resourceVersion ?? '', entries };
  }

  async write(
    previous: BudgetRecord | undefined,
    entries: readonly BudgetEntry[],
    holder: string,
  ): Promise<boolean> {
    const body = this.leaseBody(previous, entries, holder);
    // Lost to another writer (409, or 404: deleted since): the caller reads again.
    const written = await this.leases.swap(body, `writing the action budget Lease ${this.where()}`);
    return written !== undefined;
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
