import type { KubeConfig, KubernetesObject, V1Deployment, V1Lease } from '@kubernetes/client-node';
import type { Clock } from '../ports.js';
import type { Logger } from './logger.js';
import { COOLDOWN_SELECTOR, type LeaseReader } from './cooldown-lease.js';
import type { KubeApis } from './kube-api.js';
import type { Page, PageRequest } from './paging.js';
import { WatchCache, type WatchMode, type WatchTiming } from './watch-cache.js';

/** The only annotations the service reads (opt-in/opt-out and its own). */
const OWN_PREFIX = 'pod-rebalancer.io/';

/**
 * What the service reads of a Deployment: identity, opt-in/out, selector, rollout state, and the
 * pod template's priority (the scope rules never act on system-critical pods).
 */
export function slimDeployment(deployment: V1Deployment): V1Deployment {
  const { metadata = {}, spec, status = {} } = deployment;
  const annotations = Object.fromEntries(
    Object.entries(metadata.annotations ?? {}).filter(([key]) => key.startsWith(OWN_PREFIX)),
  );
  return {
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      generation: metadata.generation,
      annotations,
    },
    spec: spec && {
      replicas: spec.replicas,
      selector: spec.selector,
      template: {
        spec: {
          containers: [],
          priorityClassName: spec.template?.spec?.priorityClassName,
          priority: spec.template?.spec?.priority,
        },
      },
    },
    status: {
      observedGeneration: status.observedGeneration,
      updatedReplicas: status.updatedReplicas,
      readyReplicas: status.readyReplicas,
      availableReplicas: status.availableReplicas,
    },
  };
}

/** How the service's watch caches are built besides what they watch. */
export interface CacheOptions {
  logger: Logger;
  /** Tests shorten the watch timing; the defaults suit a real API server. */
  timing?: Partial<WatchTiming>;
}

/** What a set of per-namespace watch caches watches, and how it says so in the log. */
export interface NamespacedCacheSpec<T extends KubernetesObject> {
  /** The kind, for log lines (e.g. `Deployment`). */
  kind: string;
  /** The collection's API path in one namespace, or cluster-wide when `namespace` is undefined. */
  path: (namespace: string | undefined) => string;
  /** Lists one page of that same collection. */
  list: (namespace: string | undefined, page: PageRequest) => Promise<Page<T>>;
  slim: (object: T) => T;
}

/**
 * The names a watch cache holds, by namespace, so that one namespace's objects are read without
 * copying the whole cache. It follows the cache: a complete paged list replaces it (a list that
 * fails midway changes nothing, like the cache's), and each watch event updates it.
 */
class NamespaceIndex {
  private names = new Map<string, Set<string>>();
  private pending = new Map<string, Set<string>>();

  /** One page of a list, as the cache receives it; the last page of a pass replaces the index. */
  listed(page: PageRequest, answer: Page<KubernetesObject>): void {
    if (!page._continue) this.pending = new Map();
    for (const object of answer.items) add(this.pending, object);
    if (!answer.metadata?._continue) this.names = this.pending;
  }

  changed(phase: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubernetesObject): void {
    if (phase !== 'DELETED') return add(this.names, object);
    const { namespace = '', name = '' } = object.metadata ?? {};
    this.names.get(namespace)?.delete(name);
  }

  of(namespace: string): readonly string[] {
    return [...(this.names.get(namespace) ?? [])];
  }
}

function add(names: Map<string, Set<string>>, object: KubernetesObject): void {
  const { namespace = '', name = '' } = object.metadata ?? {};
  const set = names.get(namespace) ?? new Set<string>();
  names.set(namespace, set.add(name));
}

/**
 * Watch caches of one collection: one per namespace in scope (NAMESPACES, which a per-namespace
 * RoleBinding allows), or one cluster-wide. Each lists page by page, falls back to periodic lists
 * when its watch is refused, and is read one namespace at a time.
 */
export class NamespacedCaches<T extends KubernetesObject> {
  private readonly caches = new Map<string, { cache: WatchCache<T>; index: NamespaceIndex }>();

  constructor(
    kubeConfig: KubeConfig,
    /** Only these namespaces (NAMESPACES); all when undefined. */
    private readonly namespaces: readonly string[] | undefined,
    spec: NamespacedCacheSpec<T>,
    { logger, timing }: CacheOptions,
  ) {
    const onError = (error: unknown) =>
      logger.warn(`${spec.kind} watch failed; restarting`, { error: String(error) });
    const onModeChange = (mode: WatchMode) => logModeChange(logger, spec.kind, mode);
    const cacheOf = (namespace: string | undefined) => {
      const index = new NamespaceIndex();
      const cache = new WatchCache<T>(kubeConfig, {
        path: spec.path(namespace),
        list: async (page) => {
          const answer = await spec.list(namespace, page);
          index.listed(page, answer);
          return answer;
        },
        slim: spec.slim,
        onError,
        onModeChange,
        onChange: (phase, object) => index.changed(phase, object),
        timing,
      });
      return { cache, index };
    };
    for (const namespace of namespaces ?? [undefined]) {
      this.caches.set(namespace ?? '', cacheOf(namespace));
    }
  }

  start(): this {
    for (const { cache } of this.caches.values()) cache.start();
    return this;
  }

  isSynced(): boolean {
    return [...this.caches.values()].every(({ cache }) => cache.isSynced());
  }

  /** Polling when any of its watches fell back to periodic lists. */
  mode(): WatchMode {
    const polling = [...this.caches.values()].some(({ cache }) => cache.mode() === 'polling');
    return polling ? 'polling' : 'watching';
  }

  /**
   * Whether the caches can answer for this namespace: one watches it and has synced. When they
   * cannot (out of scope, or still listing), the caller asks the API server.
   */
  covers(namespace: string): boolean {
    return this.entryOf(namespace)?.cache.isSynced() ?? false;
  }

  get(namespace: string, name: string): T | undefined {
    return this.entryOf(namespace)?.cache.get(name, namespace);
  }

  /** The namespace's objects, found through the index: never a copy of the whole cache. */
  list(namespace: string): T[] {
    const entry = this.entryOf(namespace);
    if (!entry) return [];
    return entry.index.of(namespace).flatMap((name) => entry.cache.get(name, namespace) ?? []);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.caches.values()].map(({ cache }) => cache.stop()));
  }

  private entryOf(namespace: string) {
    return this.caches.get(this.namespaces ? namespace : '');
  }
}

/** Deployments from watch caches: one per namespace in scope, or one cluster-wide. */
export class DeploymentCache extends NamespacedCaches<V1Deployment> {
  constructor(
    kubeConfig: KubeConfig,
    apis: KubeApis,
    /** Only these namespaces (NAMESPACES); all when undefined. */
    namespaces: readonly string[] | undefined,
    options: CacheOptions,
  ) {
    super(
      kubeConfig,
      namespaces,
      {
        kind: 'Deployment',
        path: (namespace) =>
          namespace
            ? `/apis/apps/v1/namespaces/${namespace}/deployments`
            : '/apis/apps/v1/deployments',
        list: (namespace, page) =>
          namespace
            ? apis.apps.listNamespacedDeployment({ namespace, ...page })
            : apis.apps.listDeploymentForAllNamespaces(page),
        slim: slimDeployment,
      },
      options,
    );
  }
}

/** Compares two resourceVersions: etcd's are integers; an unknown format counts as older. */
function newer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !/^\d+$/.test(a)) return false;
  if (!b || !/^\d+$/.test(b)) return true;
  return BigInt(a) > BigInt(b);
}

/**
 * The cooldown Leases of STATE_NAMESPACE from a watch cache, plus the Leases this process has
 * just written (until the watch brings them back), so that a storm right after an action is
 * answered `cooldown` from memory. A cache that lags behind another replica's write can only
 * let a notification through to the compare-and-swap, which then fails: never a second action.
 */
export class LeaseCache implements LeaseReader {
  private readonly cache: WatchCache<V1Lease>;
  private readonly written = new Map<string, V1Lease>();
  /** Each Lease's latest version this process saw change (event or own write), and when. */
  private readonly changed = new Map<string, { version: string; at: Date }>();
  private readonly clock: Clock;

  private readonly namespace: string;
  private readonly fallback: LeaseReader;

  constructor(
    kubeConfig: KubeConfig,
    apis: KubeApis,
    options: CacheOptions & {
      namespace: string;
      /** Reads from the API server while the cache has not synced yet. */
      fallback: LeaseReader;
      /** This replica's clock: the changes it sees are timed by it, not by their writer's. */
      clock?: Clock;
    },
  ) {
    const { namespace, logger, timing } = options;
    this.clock = options.clock ?? { now: () => new Date() };
    this.namespace = namespace;
    this.fallback = options.fallback;
    this.cache = new WatchCache<V1Lease>(kubeConfig, {
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      list: (page) =>
        apis.coordination.listNamespacedLease({
          namespace,
          labelSelector: COOLDOWN_SELECTOR,
          ...page,
        }),
      slim: (lease) => lease,
      labelSelector: COOLDOWN_SELECTOR,
      onError: (error) => logger.warn('Lease watch failed; restarting', { error: String(error) }),
      onModeChange: (mode) => logModeChange(logger, 'Lease', mode),
      onChange: (phase, lease) => this.sawChange(lease, phase === 'DELETED'),
      timing,
    });
  }

  start(): this {
    this.cache.start();
    return this;
  }

  isSynced(): boolean {
    return this.cache.isSynced();
  }

  mode(): WatchMode {
    return this.cache.mode();
  }

  async get(name: string): Promise<V1Lease | undefined> {
    if (!this.cache.isSynced()) return this.fallback.get(name);
    const watched = this.cache.get(name, this.namespace);
    const mine = this.written.get(name);
    if (!mine) return watched;
    if (!watched || newer(mine.metadata?.resourceVersion, watched.metadata?.resourceVersion)) {
      return mine;
    }
    this.written.delete(name);
    return watched;
  }

  /**
   * Every cooldown Lease the watch holds, each replaced by this process's own newer write (as
   * get() does); undefined until it has synced.
   */
  list(): V1Lease[] | undefined {
    if (!this.cache.isSynced()) return undefined;
    const byName = new Map(this.cache.list(this.namespace).map((l) => [l.metadata?.name, l]));
    for (const [name, mine] of this.written) {
      const watched = byName.get(name);
      if (!watched || newer(mine.metadata?.resourceVersion, watched.metadata?.resourceVersion)) {
        byName.set(name, mine);
      }
    }
    return [...byName.values()];
  }

  /** A Lease this process wrote (the API server's answer), until the watch catches up. */
  remember(lease: V1Lease): void {
    if (lease.metadata?.name) this.written.set(lease.metadata.name, lease);
    this.sawChange(lease, false);
  }

  observedAt(name: string, version: string): Date | undefined {
    const seen = this.changed.get(name);
    return seen?.version === version ? seen.at : undefined;
  }

  /** Times a change the first time this process sees it (our own write comes back as an event). */
  private sawChange(lease: V1Lease, deleted: boolean): void {
    const { name, resourceVersion: version = '' } = lease.metadata ?? {};
    if (!name) return;
    if (deleted) this.changed.delete(name);
    else if (this.changed.get(name)?.version !== version) {
      this.changed.set(name, { version, at: this.clock.now() });
    }
  }

  forget(name: string): void {
    this.written.delete(name);
  }

  async stop(): Promise<void> {
    await this.cache.stop();
  }
}

function logModeChange(logger: Logger, kind: string, mode: WatchMode): void {
  if (mode === 'polling') {
    logger.warn(`${kind} watch refused or failing; listing periodically instead`, { mode });
  } else {
    logger.info(`${kind} watch running again`, { mode });
  }
}
