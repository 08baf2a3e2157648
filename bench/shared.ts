/** What the benchmark's processes agree on. */
import { performance } from 'node:perf_hooks';

/** The webhook token every target is configured with. */
export const TOKEN = 'bench-token';

/** Imbalanced: stddev ≈ 0.58 cores over five pods, so every alert acts. */
export const POD_CPU = [1.8, 0.6, 0.62, 0.58, 0.05];

export interface World {
  namespaces: number;
  deploymentsPerNamespace: number;
  /** Pods of each Deployment (default: POD_CPU's five); more are spread between busy and idle. */
  podsPerDeployment?: number;
}

/** What the fakes process is asked to do. */
export type FakesCommand =
  | { cmd: 'seed'; world: World }
  | { cmd: 'counts' }
  | { cmd: 'prometheus-delay'; delayMs: number; times: number }
  | { cmd: 'eviction-times' };

export interface Counts {
  kubernetesCalls: number;
  /** Of those, lists and watches of a collection (per namespace or cache, not per action). */
  kubernetesLists?: number;
  evictions: number;
  prometheusQueries: number;
  /** Requests to the rule engine's /api/v1/rules (provenance: at most one per payload). */
  rulesRequests?: number;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}
