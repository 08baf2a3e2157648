import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { statusOf } from './kube-api.js';
import { listPaged, PAGE_SIZE, type Page, type PageRequest } from './paging.js';

export interface WatchCacheOptions<T extends KubernetesObject> {
  /** The collection's API path, e.g. /apis/apps/v1/deployments. */
  path: string;
  /**
   * Lists one page of the collection (the same one `path` watches). A function that ignores
   * the page lists everything at once: fine for a small collection, never for a big one.
   */
  list: (page: PageRequest) => Promise<Page<T>>;
  /** Keeps only what the service reads of each object, so the cache stays small. */
  slim: (object: T) => T;
  labelSelector?: string;
  /** Called when the watch fails and is restarted (for a log line). */
  onError?: (error: unknown) => void;
  /** Called for each change a watch brings (not for what a list brings), after it is applied. */
  onChange?: (phase: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;
  /** Called when the cache falls back to periodic lists, or watches again. */
  onModeChange?: (mode: WatchMode) => void;
  /** Tests shorten these; the defaults suit a real API server. */
  timing?: Partial<WatchTiming>;
}

/**
 * `read` of a cached object, computed once per version of it. A watch cache hands out the same
 * object until the object changes, and then replaces it (it never mutates one), so an alert
 * storm that reads it on every repeat pays for `read` once. What `read` returns is shared
 * between readers: nothing may mutate it either.
 */
export function oncePerVersion<T extends object, R extends object>(
  read: (object: T) => R,
): (object: T) => R {
  const results = new WeakMap<T, R>();
  return (object) => {
    let result = results.get(object);
    if (!result) results.set(object, (result = read(object)));
    return result;
  };
}

/** Watching (events as they happen) or polling (periodic paged lists, the watch being refused). */
export type WatchMode = 'watching' | 'polling';

export interface WatchTiming {
  /** Items per list page. */
  pageSize: number;
  /** The longest a watch may stay silent (no event, no bookmark) before it is dropped. */
  livenessMs: number;
  firstRetryMs: number;
  maxRetryMs: number;
  /** A watch open this long was healthy: the backoff starts over. */
  healthyAfterMs: number;
  /** Watches failed in a row after which the cache lists periodically instead. */
  failuresBeforePolling: number;
  /** How often the collection is listed while polling. */
  pollIntervalMs: number;
  /** While polling, how often a watch is tried again (RBAC may have been fixed). */
  rewatchAfterMs: number;
  /** The watch's server-side `timeoutSeconds`. */
  watchTimeoutSeconds: () => number;
}

/**
 * client-go's reflector asks each watch to end after a random 5 to 10 minutes, so that the
 * watches of many clients do not all end (and come back) at once. client-node's Watch sends none
 * (and the 30 s timeout it builds is overwritten by its own abort signal), so we send it here.
 */
const MIN_WATCH_TIMEOUT_S = 300;

export const WATCH_TIMING: Readonly<WatchTiming> = Object.freeze({
  pageSize: PAGE_SIZE,
  // The API server sends a bookmark about once a minute to a watch that asked for them.
  livenessMs: 3 * 60_000,
  firstRetryMs: 500,
  maxRetryMs: 30_000,
  healthyAfterMs: 30_000,
  failuresBeforePolling: 5,
  pollIntervalMs: 30_000,
  rewatchAfterMs: 10 * 60_000,
  watchTimeoutSeconds: () => MIN_WATCH_TIMEOUT_S + Math.floor(Math.random() * MIN_WATCH_TIMEOUT_S),
});

/** How one watch ended. */
interface WatchEnd {
  /** Undefined when the server closed it (its timeout) or asked for a new list (410). */
  error?: unknown;
  accepted: boolean;
  healthy: boolean;
}

class SilentWatch extends Error {}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

/**
 * A watch cache that behaves like a client-go informer: a paged list, slimmed item by item,
 * then a watch from the list's resourceVersion with bookmarks and a server-side timeout. It
 * counts as synced only once the list is complete and a watch was accepted. A watch that ends
 * is resumed from the last resourceVersion (a new list only after 410 Gone); one silent past
 * `livenessMs` (a half-open connection) is dropped and resumed. Failures back off, growing,
 * and the backoff resets only after a healthy stream. A watch that is forbidden (403: RBAC
 * with list and no watch) or keeps failing falls back to a paged list every `pollIntervalMs`:
 * the cache stays usable, a little later, and says so through `mode()`.
 */
export class WatchCache<T extends KubernetesObject> {
  private readonly watcher: Watch;
  private readonly timing: WatchTiming;
  private objects = new Map<string, T>();
  private resourceVersion = '';
  private synced = false;
  private stopped = true;
  private currentMode: WatchMode = 'watching';
  private failures = 0;
  private retryMs: number;
  private pollingSince = 0;
  private endWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: WatchCacheOptions<T>,
  ) {
    this.watcher = new Watch(kubeConfig);
    this.timing = { ...WATCH_TIMING, ...options.timing };
    this.retryMs = this.timing.firstRetryMs;
  }

  start(): this {
    if (!this.stopped) return this;
    this.stopped = false;
    void this.run();
    return this;
  }

  /** True once a complete list is held and, when watching, a watch was accepted on it. */
  isSynced(): boolean {
    return this.synced;
  }

  mode(): WatchMode {
    return this.currentMode;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): readonly T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.endWatch?.();
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.resourceVersion && !(await this.relist())) continue;
      if (this.currentMode === 'polling' && !this.timeToRewatch()) {
        this.synced = true;
        await this.sleep(this.timing.pollIntervalMs);
        this.resourceVersion = '';
        continue;
      }
      await this.afterWatch(await this.watchOnce());
    }
  }

  /** A complete list, page by page; false (after the backoff) when it failed. */
  private async relist(): Promise<boolean> {
    try {
      const { objects, resourceVersion } = await listPaged(
        (page) => this.options.list(page),
        () => {
          const objects = new Map<string, T>();
          return {
            add: (item: T) => {
              const slim = this.options.slim(item);
              objects.set(keyOf(slim), slim);
            },
            done: (resourceVersion: string) => ({ objects, resourceVersion }),
          };
        },
        this.timing.pageSize,
      );
      this.objects = objects;
      this.resourceVersion = resourceVersion;
      return true;
    } catch (error) {
      this.synced = false;
      this.options.onError?.(error);
      await this.backoff();
      return false;
    }
  }

  private timeToRewatch(): boolean {
    return Date.now() - this.pollingSince >= this.timing.rewatchAfterMs;
  }

  /** One watch from the current resourceVersion, until it ends one way or another. */
  private watchOnce(): Promise<WatchEnd> {
    return new Promise((resolve) => {
      const opened = Date.now();
      let accepted = false;
      let ended = false;
      let controller: AbortController | undefined;
      let liveness: NodeJS.Timeout | undefined;
      const end = (error?: unknown) => {
        if (ended) return;
        ended = true;
        clearTimeout(liveness);
        controller?.abort();
        this.endWatch = undefined;
        const healthy = accepted && Date.now() - opened >= this.timing.healthyAfterMs;
        resolve({ error, accepted, healthy });
      };
      // Any line, bookmarks included, proves the stream alive; silence past the limit does not.
      const alive = () => {
        clearTimeout(liveness);
        liveness = setTimeout(
          () => end(new SilentWatch('the watch stayed silent')),
          this.timing.livenessMs,
        );
        liveness.unref();
      };
      this.endWatch = () => end();
      alive();
      const query = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.timing.watchTimeoutSeconds(),
        labelSelector: this.options.labelSelector,
      };
      this.watcher
        .watch(
          this.options.path,
          query,
          (phase, object) => {
            alive();
            this.apply(phase, object as T, end);
          },
          (error: unknown) => end(error ?? undefined),
        )
        .then(
          (request) => {
            controller = request;
            if (ended) return request.abort();
            accepted = true;
            this.onAccepted();
          },
          (error: unknown) => end(error),
        );
    });
  }

  private onAccepted(): void {
    this.synced = true;
    if (this.currentMode === 'polling') this.setMode('watching');
  }

  private apply(phase: string, object: T, end: (error?: unknown) => void): void {
    if (phase === 'ERROR') return this.watchError(object, end);
    if (phase === 'ADDED' || phase === 'MODIFIED') {
      const slim = this.options.slim(object);
      this.objects.set(keyOf(slim), slim);
      this.options.onChange?.(phase, slim);
    } else if (phase === 'DELETED') {
      this.objects.delete(keyOf(object));
      this.options.onChange?.(phase, object);
    }
    this.resourceVersion = object.metadata?.resourceVersion || this.resourceVersion;
  }

  /** An ERROR event ends the watch: 410 Gone (too old to resume from) asks for a new list. */
  private watchError(status: unknown, end: (error?: unknown) => void): void {
    const code = (status as { code?: number }).code;
    if (code !== 410) return end(Object.assign(new Error('watch error'), { code }));
    this.resourceVersion = '';
    end();
  }

  private async afterWatch(outcome: WatchEnd): Promise<void> {
    if (outcome.healthy) {
      this.failures = 0;
      this.retryMs = this.timing.firstRetryMs;
    }
    if (this.stopped) return;
    // Closed by the server: resume at once after a healthy stream, after the backoff otherwise
    // (a server that closes every watch at once must not be asked again in a tight loop).
    if (outcome.error === undefined) return outcome.healthy ? undefined : this.backoff();
    this.failures++;
    this.options.onError?.(outcome.error);
    const forbidden = statusOfWatch(outcome.error) === 403;
    if (forbidden || this.failures >= this.timing.failuresBeforePolling) {
      // Periodic lists from now on: each one is complete, so the cache stays synced.
      this.pollingSince = Date.now();
      this.resourceVersion = '';
      if (this.currentMode !== 'polling') this.setMode('polling');
      return;
    }
    // Until a watch runs again the cache hears of no change: readers ask the API server.
    if (!(outcome.error instanceof SilentWatch)) this.synced = false;
    await this.backoff();
  }

  private setMode(mode: WatchMode): void {
    this.currentMode = mode;
    this.options.onModeChange?.(mode);
  }

  private async backoff(): Promise<void> {
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.timing.maxRetryMs);
    await this.sleep(wait);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** The HTTP status of a failed watch: client-node's Watch puts it on `statusCode`. */
function statusOfWatch(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown; code?: unknown } | undefined)?.statusCode;
  return typeof code === 'number' ? code : statusOf(error);
}
