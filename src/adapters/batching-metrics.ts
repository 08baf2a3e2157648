import type { CpuSamples } from '../core/types.js';
import type { MetricsSource, PodCpuQuery } from '../ports.js';

export interface BatchingOptions {
  /**
   * How long a batch stays open after its first call. 0 (the default) closes it at the end of
   * the current tick: only calls that are truly concurrent are merged, none is delayed.
   */
  lingerMs?: number;
  /** Most pods in one merged query; a batch that reaches it is sent at once. */
  maxPods?: number;
}

/** Keeps one merged query's regex and POST body to a size every Prometheus accepts. */
export const DEFAULT_MAX_PODS = 1000;

interface Waiter {
  pods: readonly string[];
  resolve: (samples: CpuSamples) => void;
  reject: (reason: unknown) => void;
}

interface Batch {
  query: Omit<PodCpuQuery, 'pods'>;
  pods: Set<string>;
  waiters: Waiter[];
  /** Cancels the scheduled send (when the batch filled up first). */
  cancel: () => void;
}

/** Calls merge only when they ask the same question of Prometheus: namespace, window and time. */
function batchKey(query: PodCpuQuery): string {
  return [query.namespace, query.windowMs, query.at?.getTime() ?? 'now'].join('\n');
}

function pick(samples: CpuSamples, pods: readonly string[]): CpuSamples {
  const mine = new Map<string, number>();
  for (const pod of pods) {
    const value = samples.get(pod);
    if (value !== undefined) mine.set(pod, value);
  }
  return mine;
}

/**
 * A MetricsSource decorator that merges concurrent `podCpu` calls for the same namespace,
 * window and evaluation time into one query for the union of their pods, and hands each caller
 * only its own pods' samples. A payload that names many Deployments of one namespace then costs
 * one Prometheus query per namespace and tick instead of one per Deployment. A failure fails
 * every caller of that batch alike (each sees the same UpstreamError); nothing is cached past it.
 */
export class BatchingMetricsSource implements MetricsSource {
  private readonly open = new Map<string, Batch>();
  private readonly lingerMs: number;
  private readonly maxPods: number;

  constructor(
    private readonly inner: MetricsSource,
    options: BatchingOptions = {},
  ) {
    this.lingerMs = options.lingerMs ?? 0;
    this.maxPods = options.maxPods ?? DEFAULT_MAX_PODS;
  }

  podCpu(query: PodCpuQuery): Promise<CpuSamples> {
    if (query.pods.length === 0) return Promise.resolve(new Map());
    const key = batchKey(query);
    let batch = this.open.get(key);
    if (batch && !this.fits(batch, query.pods)) {
      this.send(key, batch);
      batch = undefined;
    }
    if (!batch) batch = this.openBatch(key, query);
    for (const pod of query.pods) batch.pods.add(pod);
    const answer = new Promise<CpuSamples>((resolve, reject) =>
      batch.waiters.push({ pods: query.pods, resolve, reject }),
    );
    if (batch.pods.size >= this.maxPods) this.send(key, batch);
    return answer;
  }

  private fits(batch: Batch, pods: readonly string[]): boolean {
    let added = 0;
    for (const pod of pods) if (!batch.pods.has(pod)) added++;
    return batch.pods.size + added <= this.maxPods;
  }

  private openBatch(key: string, query: PodCpuQuery): Batch {
    const { namespace, windowMs, at } = query;
    const batch: Batch = {
      query: { namespace, windowMs, at },
      pods: new Set(),
      waiters: [],
      cancel: () => undefined,
    };
    if (this.lingerMs > 0) {
      const timer = setTimeout(() => this.send(key, batch), this.lingerMs);
      batch.cancel = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => this.send(key, batch));
      batch.cancel = () => clearImmediate(immediate);
    }
    this.open.set(key, batch);
    return batch;
  }

  private send(key: string, batch: Batch): void {
    if (this.open.get(key) === batch) this.open.delete(key);
    batch.cancel();
    const pods = [...batch.pods].sort();
    // Through a promise, so that even an adapter that throws synchronously rejects the callers.
    void Promise.resolve({ ...batch.query, pods })
      .then((query) => this.inner.podCpu(query))
      .then(
        (samples) => {
          for (const waiter of batch.waiters) waiter.resolve(pick(samples, waiter.pods));
        },
        (reason: unknown) => {
          for (const waiter of batch.waiters) waiter.reject(reason);
        },
      );
  }
}
