import { ApiException, V1MicroTime, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import type { DeploymentFacts, LabelSelector, PodFacts, Target } from '../core/types.js';
import type { Cluster, DeploymentEvent, PodRef, RemovalResult } from '../ports.js';
import { statusOf, toUpstreamError, type KubeApis } from './kube-api.js';
import { listPaged } from './paging.js';
import { oncePerVersion } from './watch-cache.js';

// Kept importable from here, where they lived first.
export { createKubeApis, statusOf, toUpstreamError, type KubeApis } from './kube-api.js';

export const OPT_OUT_ANNOTATION = 'pod-rebalancer.io/enabled';
export const COMPONENT = 'pod-rebalancer';

/** Turns a Deployment's selector into the `labelSelector` query syntax. */
export function toLabelSelector(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    if (operator === 'In') parts.push(`${key} in (${values.join(',')})`);
    else if (operator === 'NotIn') parts.push(`${key} notin (${values.join(',')})`);
    else if (operator === 'Exists') parts.push(key);
    else if (operator === 'DoesNotExist') parts.push(`!${key}`);
  }
  return parts.join(',');
}

/**
 * A rollout is in progress until the controller has observed the latest spec and every
 * desired replica is updated and ready.
 */
function rolloutInProgress(deployment: V1Deployment): boolean {
  const desired = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  const observed = status.observedGeneration ?? 0;
  return (
    observed < (deployment.metadata?.generation ?? 0) ||
    [status.updatedReplicas, status.readyReplicas].some((count) => (count ?? 0) !== desired)
  );
}

/** What the scope rules read of the pod template: its priority class and priority. */
function templatePriority(
  deployment: V1Deployment,
): Pick<DeploymentFacts, 'priorityClassName' | 'priority'> {
  const spec = deployment.spec?.template?.spec;
  return { priorityClassName: spec?.priorityClassName, priority: spec?.priority };
}

/** Desired and available replicas (a one-by-one rotation waits until they are equal again). */
function replicaCounts(
  deployment: V1Deployment,
): Pick<DeploymentFacts, 'desiredReplicas' | 'availableReplicas'> {
  return {
    desiredReplicas: deployment.spec?.replicas ?? 1,
    availableReplicas: deployment.status?.availableReplicas ?? 0,
  };
}

export function toDeploymentFacts(deployment: V1Deployment): DeploymentFacts {
  const metadata = deployment.metadata ?? {};
  const enabled = metadata.annotations?.[OPT_OUT_ANNOTATION];
  return {
    namespace: metadata.namespace ?? '',
    name: metadata.name ?? '',
    uid: metadata.uid ?? '',
    optedOut: enabled === 'false',
    optedIn: enabled === 'true',
    ...templatePriority(deployment),
    rolloutInProgress: rolloutInProgress(deployment),
    selector: (deployment.spec?.selector ?? {}) as LabelSelector,
    ...replicaCounts(deployment),
  };
}

export function toPodFacts(pod: V1Pod): PodFacts {
  const { name = '', uid = '', deletionTimestamp } = pod.metadata ?? {};
  const { phase = 'Unknown', conditions = [], startTime } = pod.status ?? {};
  return {
    name,
    uid,
    phase,
    ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    terminating: deletionTimestamp != null,
    startedAt: startTime ? new Date(startTime) : undefined,
    ...podPriority(pod),
  };
}

/** The pod's own priority, as admission set it from its class (the scope rules read it). */
function podPriority(pod: V1Pod): Pick<PodFacts, 'priority' | 'priorityClassName'> {
  const { priority, priorityClassName } = pod.spec ?? {};
  return {
    ...(priority !== undefined && { priority }),
    ...(priorityClassName !== undefined && { priorityClassName }),
  };
}

/**
 * The Deployment a pod belongs to: the name of its controlling ReplicaSet without the pod's
 * `pod-template-hash` (`<deployment>-<hash>`). Undefined for a pod no Deployment controls. A
 * selector alone also matches a canary Deployment's pods or a bare debugging pod with the same
 * labels; those are neither counted nor removed.
 */
export function owningDeployment(pod: V1Pod): string | undefined {
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  const controller = pod.metadata?.ownerReferences?.find((owner) => owner.controller);
  const suffix = `-${hash}`;
  if (hash === undefined || controller?.kind !== 'ReplicaSet') return undefined;
  return controller.name.endsWith(suffix) ? controller.name.slice(0, -suffix.length) : undefined;
}

/**
 * One label selector that finds the pods of all these Deployments: the Deployment's own when
 * there is one; `key in (a,b,...)` when they all select on the same key by value alone (the
 * usual `app: <name>`); else none (the whole namespace, filtered by owner afterwards).
 */
export function sharedSelector(deployments: readonly DeploymentFacts[]): string | undefined {
  if (deployments.length === 1) return toLabelSelector(deployments[0]!.selector);
  if (deployments.some((d) => (d.selector.matchExpressions ?? []).length > 0)) return undefined;
  const keys = Object.keys(deployments[0]?.selector.matchLabels ?? {});
  const key = keys.find((k) => deployments.every((d) => d.selector.matchLabels?.[k] !== undefined));
  if (key === undefined) return undefined;
  const values = new Set(deployments.map((d) => d.selector.matchLabels![key]!));
  return `${key} in (${[...values].sort().join(',')})`;
}

/** What the Cluster reads of the Deployment cache (caches.ts): whether it answers, and what. */
export interface CachedDeployments {
  covers(namespace: string): boolean;
  get(namespace: string, name: string): V1Deployment | undefined;
}

/** The Cluster port over the real Kubernetes API. */
export class KubernetesCluster implements Cluster {
  constructor(
    private readonly apis: KubeApis,
    /** Who we are in Events (reportingInstance): the pod name in a cluster. */
    private readonly instance: string,
    /** Deployments from a watch cache; read from the API server where it cannot answer. */
    private readonly deployments?: CachedDeployments,
  ) {}

  /** The facts of a cached Deployment, once per version of it (an alert storm reads it often). */
  private readonly cachedFacts = oncePerVersion(toDeploymentFacts);

  async getDeployment(target: Target): Promise<DeploymentFacts | undefined> {
    if (this.deployments?.covers(target.namespace)) {
      const cached = this.deployments.get(target.namespace, target.deployment);
      return cached && this.cachedFacts(cached);
    }
    return this.readDeployment(target);
  }

  async readDeployment(target: Target): Promise<DeploymentFacts | undefined> {
    try {
      const deployment = await this.apis.apps.readNamespacedDeployment({
        namespace: target.namespace,
        name: target.deployment,
      });
      return toDeploymentFacts(deployment);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw toUpstreamError(error, `reading Deployment ${target.namespace}/${target.deployment}`);
    }
  }

  async listPods(deployment: DeploymentFacts): Promise<PodFacts[]> {
    const pods = await this.listPodsByDeployment(deployment.namespace, [deployment]);
    return pods.get(deployment.name) ?? [];
  }

  /**
   * The pods of several Deployments of one namespace in one list, page by page, keeping only
   * what the decision reads of each pod: memory stays bounded by one page plus the facts.
   * Never from a cache: these are the pods we may remove.
   */
  async listPodsByDeployment(
    namespace: string,
    deployments: readonly DeploymentFacts[],
  ): Promise<Map<string, PodFacts[]>> {
    const labelSelector = sharedSelector(deployments);
    const fold = () => {
      const found = new Map(deployments.map((d) => [d.name, [] as PodFacts[]]));
      return {
        add: (pod: V1Pod) => found.get(owningDeployment(pod) ?? '')?.push(toPodFacts(pod)),
        done: () => found,
      };
    };
    try {
      return await listPaged(
        (page) => this.apis.core.listNamespacedPod({ namespace, labelSelector, ...page }),
        fold,
      );
    } catch (error) {
      throw toUpstreamError(error, `listing pods of ${namespace}`);
    }
  }

  async evictPod(pod: PodRef): Promise<RemovalResult> {
    try {
      await this.apis.core.createNamespacedPodEviction({
        namespace: pod.namespace,
        name: pod.name,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name: pod.name, namespace: pod.namespace },
          // The uid precondition makes sure we evict the pod we measured, not a namesake.
          deleteOptions: { preconditions: { uid: pod.uid } },
        },
      });
      return 'removed';
    } catch (error) {
      return removalFailure(error, `evicting pod ${pod.namespace}/${pod.name}`);
    }
  }

  async deletePod(pod: PodRef): Promise<RemovalResult> {
    try {
      await this.apis.core.deleteNamespacedPod({
        namespace: pod.namespace,
        name: pod.name,
        body: { preconditions: { uid: pod.uid } },
      });
      return 'removed';
    } catch (error) {
      return removalFailure(error, `deleting pod ${pod.namespace}/${pod.name}`);
    }
  }

  async recordEvent(event: DeploymentEvent): Promise<void> {
    const { deployment } = event;
    const at = new V1MicroTime(event.at.getTime());
    try {
      await this.apis.core.createNamespacedEvent({
        namespace: deployment.namespace,
        body: {
          metadata: {
            ...(event.name ? { name: event.name } : { generateName: `${deployment.name}.` }),
            namespace: deployment.namespace,
          },
          involvedObject: {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: deployment.name,
            namespace: deployment.namespace,
            uid: deployment.uid,
          },
          type: event.type,
          reason: event.reason,
          action: event.action,
          message: event.message,
          eventTime: at,
          firstTimestamp: event.at,
          lastTimestamp: event.at,
          count: 1,
          source: { component: COMPONENT },
          reportingComponent: `${COMPONENT}.io/${COMPONENT}`,
          reportingInstance: this.instance,
        },
      });
    } catch (error) {
      // A named Event that exists was already said (by us or another replica) in this window.
      if (event.name && statusOf(error) === 409) return;
      throw toUpstreamError(
        error,
        `recording an Event on ${deployment.namespace}/${deployment.name}`,
      );
    }
  }
}

/**
 * Whether a 429 from the Eviction API is a PodDisruptionBudget's refusal. The API server says so
 * with a cause (`details.causes[].reason: DisruptionBudget`, policyv1.DisruptionBudgetCause);
 * a 429 without it is API Priority and Fairness (or another limiter) asking us to come back.
 */
export function refusedByDisruptionBudget(error: unknown): boolean {
  if (!(error instanceof ApiException)) return false;
  try {
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    const causes: unknown = body?.details?.causes;
    return (
      Array.isArray(causes) &&
      causes.some((cause) => (cause as { reason?: unknown })?.reason === 'DisruptionBudget')
    );
  } catch {
    return false;
  }
}

/**
 * A 429 whose cause is the disruption budget: recorded as pdb-blocked, not retried. Any other
 * 429 is a retryable Kubernetes error. 404 and 409 (uid precondition) mean the pod we measured
 * is already gone.
 */
function removalFailure(error: unknown, what: string): RemovalResult {
  const status = statusOf(error);
  if (status === 429 && refusedByDisruptionBudget(error)) return 'pdb-blocked';
  if (status === 404 || status === 409) return 'gone';
  throw toUpstreamError(error, what);
}
