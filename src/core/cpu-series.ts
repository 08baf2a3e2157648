/**
 * The one place that says which CPU series count. The verification query (src/adapters/
 * prometheus.ts), the backtest and `check` build their selectors here, and the recording rule
 * in rules/ must carry the same matchers: test/rules/cpu-series-drift.test.ts fails when it does not.
 */

/** cAdvisor's per-container CPU counter, in seconds. */
export const CPU_METRIC = 'container_cpu_usage_seconds_total';

/**
 * `container=""` is the pod-level cgroup total and `container="POD"` the pause container: both
 * would count a pod's CPU twice.
 */
export const BASE_CPU_MATCHERS: readonly string[] = ['container!=""', 'container!="POD"'];

/** What the configuration adds to the base matchers. */
export interface CpuSeriesSettings {
  /**
   * Matchers that pick the cAdvisor scrape when the same metric is scraped twice, e.g.
   * `job="kubelet"`, `metrics_path="/metrics/cadvisor"` (CPU_SERIES_MATCHERS).
   */
  extraMatchers: readonly string[];
  /** `cluster="name"` when the series carry a cluster label and the backend holds several. */
  clusterMatcher?: string;
}

export const DEFAULT_CPU_SERIES: CpuSeriesSettings = Object.freeze({ extraMatchers: [] });

/** Every matcher that decides whether a CPU series counts, in a stable order. */
export function cpuSeriesMatchers(settings: CpuSeriesSettings = DEFAULT_CPU_SERIES): string[] {
  return [
    ...BASE_CPU_MATCHERS,
    ...settings.extraMatchers,
    ...(settings.clusterMatcher ? [settings.clusterMatcher] : []),
  ];
}

/** The selector of the CPU series that count, with `scope` matchers (namespace, pod) first. */
export function cpuSeriesSelector(
  settings: CpuSeriesSettings = DEFAULT_CPU_SERIES,
  scope: readonly string[] = [],
): string {
  return `${CPU_METRIC}{${[...scope, ...cpuSeriesMatchers(settings)].join(', ')}}`;
}

const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MATCHER = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"$/;

/**
 * Parses `job="kubelet", metrics_path="/metrics/cadvisor"` into normalized matchers, or throws
 * an Error naming the part that is not a PromQL label matcher.
 */
export function parseMatchers(text: string): string[] {
  const parts = text.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? [];
  return parts
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const m = MATCHER.exec(part);
      if (!m) throw new Error(`expected label matchers such as job="kubelet" (bad: ${part})`);
      return `${m[1]}${m[2]}"${m[3]}"`;
    });
}

/** The matcher that restricts the series to this cluster's. */
export function clusterMatcher(label: string, cluster: string): string {
  if (!LABEL.test(label)) throw new Error(`not a label name: ${label}`);
  return `${label}="${cluster.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
