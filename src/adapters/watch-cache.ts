import {
  ERROR,
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';

/** What a cached list must look like: items and the list's resourceVersion. */
interface ListOf<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface WatchCacheOptions<T extends KubernetesObject> {
  /** The collection's API path, e.g. /apis/apps/v1/deployments. */
  path: string;
  /** Lists the collection (the same one `path` watches). */
  list: () => Promise<ListOf<T>>;
  /** Keeps only what the service reads of each object, so the cache stays small. */
  slim: (object: T) => T;
  labelSelector?: string;
  /** Called when the watch fails and is restarted (for a log line). */
  onError?: (error: unknown) => void;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/**
 * A controller-style watch cache over client-node's ListWatch: list, then watch from the list's
 * resourceVersion; on 410 Gone (the version is too old) it lists again. It is synced while a
 * watch runs on a complete list; a watch that fails for any other reason unsyncs it and is
 * restarted, with backoff, from a fresh list.
 * Objects are slimmed on the way in (list and watch events alike).
 */
export class WatchCache<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private synced = false;
  private stopped = false;
  private retryMs = FIRST_RETRY_MS;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: WatchCacheOptions<T>,
  ) {
    const inner = new Watch(kubeConfig);
    const slim = options.slim;
    // ListWatch calls watch() right after it has stored the list: the cache is then complete.
    const watch = {
      watch: (
        path: string,
        query: Record<string, unknown>,
        callback: (phase: string, object: T, raw: unknown) => void,
        done: (error: unknown) => void,
      ) => {
        this.synced = true;
        this.retryMs = FIRST_RETRY_MS;
        return inner.watch(
          path,
          { ...query, allowWatchBookmarks: true },
          (phase, object, raw) => callback(phase, phase === 'ERROR' ? object : slim(object), raw),
          done,
        );
      },
    } as unknown as Watch;
    const list = async () => {
      const answer = await options.list();
      return { ...answer, items: answer.items.map(slim) };
    };
    this.informer = new ListWatch<T>(
      options.path,
      watch,
      list as never,
      false,
      options.labelSelector,
    );
    this.informer.on(ERROR, (error) => this.restartLater(error));
  }

  start(): this {
    void this.informer.start().catch((error: unknown) => this.restartLater(error));
    return this;
  }

  /** True while a watch runs on a complete list. */
  isSynced(): boolean {
    return this.synced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.informer.stop();
  }

  private restartLater(error: unknown): void {
    if (this.stopped) return;
    // Until a watch runs again the cache hears of no change: a Deployment opted out or a rollout
    // started meanwhile would be missed. Unsynced, readers ask the API server and /readyz fails.
    this.synced = false;
    this.options.onError?.(error);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (this.stopped) return;
      this.start();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }
}
