import type { KubeConfig, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { AutoscalerFacts } from '../core/autoscaler.js';
import type { AutoscalerSource } from '../ports.js';
import { toUpstreamError, type KubeApis } from './kubernetes.js';
import type { Logger } from './logger.js';
import { WatchCache } from './watch-cache.js';

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
 * (NAMESPACES, which a per-namespace RoleBinding allows), or one cluster-wide. Until a cache has
 * synced, the namespace's HPAs are listed from the API server.
 */
export class AutoscalerCache implements AutoscalerSource {
  private readonly caches: Map<string, WatchCache<V2HorizontalPodAutoscaler>>;

  constructor(
    kubeConfig: KubeConfig,
    private readonly apis: KubeApis,
    /** Only these namespaces (NAMESPACES); all when undefined. */
    private readonly namespaces: readonly string[] | undefined,
    logger: Logger,
  ) {
    const onError = (error: unknown) =>
      logger.warn('HorizontalPodAutoscaler watch failed; restarting', { error: String(error) });
    const cacheOf = (namespace: string | undefined) =>
      new WatchCache<V2HorizontalPodAutoscaler>(kubeConfig, {
        path: namespace
          ? `/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers`
          : '/apis/autoscaling/v2/horizontalpodautoscalers',
        list: () =>
          namespace
            ? apis.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace })
            : apis.autoscaling.listHorizontalPodAutoscalerForAllNamespaces(),
        slim: slimAutoscaler,
        onError,
      });
    this.caches = new Map(
      namespaces ? namespaces.map((ns) => [ns, cacheOf(ns)]) : [['', cacheOf(undefined)]],
    );
  }

  start(): this {
    for (const cache of this.caches.values()) cache.start();
    return this;
  }

  isSynced(): boolean {
    return [...this.caches.values()].every((cache) => cache.isSynced());
  }

  async autoscalers(namespace: string): Promise<AutoscalerFacts[]> {
    const cache = this.caches.get(this.namespaces ? namespace : '');
    if (cache?.isSynced()) return cache.list(namespace).map(toAutoscalerFacts);
    try {
      const list = await this.apis.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace });
      return list.items.map(toAutoscalerFacts);
    } catch (error) {
      throw toUpstreamError(error, `listing HorizontalPodAutoscalers of ${namespace}`);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.caches.values()].map((cache) => cache.stop()));
  }
}
