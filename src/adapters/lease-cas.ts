import type { V1Lease } from '@kubernetes/client-node';
import { statusOf, toUpstreamError, type KubeApis } from './kube-api.js';

/**
 * The Leases of STATE_NAMESPACE as compare-and-swap registers, the one way the cooldowns and the
 * action budget are read and written: of two writers (replicas, retries) that race, exactly one
 * write succeeds and the other learns it lost.
 */
export class LeaseRegister {
  constructor(
    private readonly apis: KubeApis,
    readonly namespace: string,
  ) {}

  /** The Lease, or undefined when there is none. */
  async read(
    name: string,
    what = `reading Lease ${this.namespace}/${name}`,
  ): Promise<V1Lease | undefined> {
    try {
      return await this.apis.coordination.readNamespacedLease({ namespace: this.namespace, name });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw toUpstreamError(error, what);
    }
  }

  /**
   * Creates the Lease when `body` carries no resourceVersion (it must not exist yet), else
   * replaces it if it is still at that version. Returns what the API server stored, or
   * undefined when another writer got there first: 409 (created or changed meanwhile) or 404
   * (deleted since it was read). Any other failure is thrown, classified.
   */
  async swap(body: V1Lease, what: string): Promise<V1Lease | undefined> {
    const namespace = this.namespace;
    try {
      return body.metadata?.resourceVersion
        ? await this.apis.coordination.replaceNamespacedLease({
            namespace,
            name: body.metadata.name!,
            body,
          })
        : await this.apis.coordination.createNamespacedLease({ namespace, body });
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 || status === 404) return undefined;
      throw toUpstreamError(error, what);
    }
  }
}
