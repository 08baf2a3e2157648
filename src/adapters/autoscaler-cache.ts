import type { KubeConfig, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { AutoscalerFacts } from '../core/autoscaler.js';
import type { AutoscalerSource } from '../ports.js';
import { toUpstreamError, type KubeApis } from './kubernetes.js';
import { NamespacedCaches, type CacheOptions } from './caches.js';
import { listPaged } from './paging.js';
import type { WatchMode } from './watch-cache.js';

/** What the scaling gate reads of an HPA: its target and its replica counts. */
export function slimAutoscaler(hpa: V2HorizontalPodAutoscaler): V2HorizontalPodAutoscaler {
  const { metadata = {}, spec, status } = hpa;
  return {
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      resourceVersion: metadata.resourceVersion,
    },
    spec: spec && { scaleTargetRef: spec.scaleTargetRef, maxReplicas: spec.maxReplicas },
    status: status && {
      desiredReplicas: status.desiredReplicas,
      currentReplicas: status.currentReplicas,
      lastScaleTime: status.lastScaleTime,
    },
  };
}

/** What the scaling gate reads of an HPA, with the API server's omissions filled in. */
export function toAutoscalerFacts(hpa: V2HorizontalPodAutoscaler): AutoscalerFacts {
  const { name, namespace } = hpa.metadata ?? {};
  const target = hpa.spec?.scaleTargetRef;
  const { desiredReplicas, currentReplicas, lastScaleTime } = hpa.status ?? {};
  return {
    namespace: String(namespace),
    name: String(name),
    target: { kind: target?.kind ?? '', name: String(target?.name) },
    desiredReplicas: desiredReplicas ?? 0,
    // The API server omits a count of 0 (omitempty).
    currentReplicas: currentReplicas ?? 0,
    lastScaleTime: timeOf(lastScaleTime),
  };
}

/** From a watch the time is the JSON string, from a typed list a Date: both parse. */
function timeOf(value: Date | string | undefined): Date | undefined {
  const time = value === undefined ? undefined : new Date(value);
  return time && !Number.isNaN(time.getTime()) ? time : undefined;
}

/**
 * HorizontalPodAutoscalers (autoscaling/v2) from watch caches: one per namespace in scope
 * (NAMESPACES, which a per-namespace RoleBinding allows), or one cluster-wide, listed page by
 * page like the Deployments'. Until a cache has synced, the namespace's HPAs are listed from the
 * API server.
 */
export class AutoscalerCache implements AutoscalerSource {
  private readonly caches: NamespacedCaches<V2HorizontalPodAutoscaler>;

  constructor(
    kubeConfig: KubeConfig,
    private readonly apis: KubeApis,
    /** Only these namespaces (NAMESPACES); all when undefined. */
    namespaces: readonly string[] | undefined,
    options: CacheOptions,
  ) {
    this.caches = new NamespacedCaches(
      kubeConfig,
      namespaces,
      {
        kind: 'HorizontalPodAutoscaler',
        path: (namespace) =>
          namespace
            ? `/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers`
            : '/apis/autoscaling/v2/horizontalpodautoscalers',
        list: (namespace, page) =>
          namespace
            ? apis.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace, ...page })
            : apis.autoscaling.listHorizontalPodAutoscalerForAllNamespaces(page),
        slim: slimAutoscaler,
      },
      options,
    );
  }

  start(): this {
    this.caches.start();
    return this;
  }

  isSynced(): boolean {
    return this.caches.isSynced();
  }

  /** Polling when any of its watches fell back to periodic lists. */
  mode(): WatchMode {
    return this.caches.mode();
  }

  async autoscalers(namespace: string): Promise<AutoscalerFacts[]> {
    if (this.caches.covers(namespace)) return this.caches.list(namespace).map(toAutoscalerFacts);
    try {
      return await listPaged(
        (page) =>
          this.apis.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace, ...page }),
        () => {
          const facts: AutoscalerFacts[] = [];
          return {
            add: (hpa: V2HorizontalPodAutoscaler) => facts.push(toAutoscalerFacts(hpa)),
            done: () => facts,
          };
        },
      );
    } catch (error) {
      throw toUpstreamError(error, `listing HorizontalPodAutoscalers of ${namespace}`);
    }
  }

  async stop(): Promise<void> {
    await this.caches.stop();
  }
}
