import type { PrometheusDriver } from 'prometheus-query';
import { loadedAlertRules, type LoadedAlertRule } from './rule-loaded.js';
import {
  createPrometheusDriver,
  toPrometheusError,
  type PrometheusConnection,
} from '../adapters/prometheus.js';
import {
  cpuSeriesSelector,
  DEFAULT_CPU_SERIES,
  type CpuSeriesSettings,
} from '../core/cpu-series.js';
import { formatDuration } from '../core/duration.js';
import type { Target } from '../core/types.js';
import { UpstreamError } from '../errors.js';
import type { DeploymentHistory, PodSeries, Timeline } from './simulate.js';

/** Prometheus refuses range queries of more than 11,000 points per series; stay well under. */
export const MAX_POINTS_PER_QUERY = 10_000;
/** Range queries in flight at once for one Deployment: faster, and still gentle on Prometheus. */
const QUERY_CONCURRENCY = 4;
/** A chunk also covers at most a day, so that progress moves and each answer stays small. */
const MAX_CHUNK_MS = 86_400_000;

/** A label value inside a double-quoted PromQL string. */
function quoted(value: string): string {
  return JSON.stringify(value);
}

/**
 * The per-pod CPU the rule records (`namespace_deployment_pod:cpu_usage:rate`), computed from the
 * raw series so that it works without the recording rules and over any past range: the 5m (rule
 * window) rate of the pod's containers, joined through kube-state-metrics' ownership chain to
 * its Deployment. test/operator/backtest-prometheus.test.ts checks it against the rule file.
 */
export function perPodCpuExpression(
  target: Target,
  rateWindowMs: number,
  series: CpuSeriesSettings = DEFAULT_CPU_SERIES,
): string {
  const ns = `namespace=${quoted(target.namespace)}`;
  const owner = `owner_name=${quoted(target.deployment)}`;
  return `sum by (namespace, pod) (
  rate(${cpuSeriesSelector(series, [ns])}[${formatDuration(rateWindowMs)}])
)
* on (namespace, pod) group_left (deployment)
  topk by (namespace, pod) (1,
    max by (namespace, deployment, pod) (
      label_replace(
        label_replace(kube_pod_owner{${ns}, owner_kind="ReplicaSet"}, "replicaset", "$1", "owner_name", "(.*)")
        * on (namespace, replicaset) group_left (owner_name)
          topk by (namespace, replicaset) (
            1, max by (namespace, replicaset, owner_name) (kube_replicaset_owner{${ns}, owner_kind="Deployment", ${owner}})
          ),
        "deployment", "$1", "owner_name", "(.*)"
      )
    )
  )`;
}

/** [start, end] pairs (ms, inclusive) that cover the timeline with no overlap and no gap. */
export function chunks(timeline: Timeline): [number, number][] {
  const perChunk = Math.max(
    1,
    Math.min(MAX_POINTS_PER_QUERY, Math.floor(MAX_CHUNK_MS / timeline.stepMs)),
  );
  const result: [number, number][] = [];
  for (let first = 0; first < timeline.length; first += perChunk) {
    const last = Math.min(first + perChunk, timeline.length) - 1;
    result.push([
      timeline.startMs + first * timeline.stepMs,
      timeline.startMs + last * timeline.stepMs,
    ]);
  }
  return result;
}

interface RangeSeries {
  metric?: { labels?: Record<string, unknown> };
  values?: { time?: Date; value?: unknown }[];
}

interface InstantSeries {
  metric?: { labels?: Record<string, unknown> };
  value?: { value?: unknown };
}

/** The range and instant queries the backtest and `check` need, over the Prometheus HTTP API. */
export class PrometheusHistory {
  private readonly driver: PrometheusDriver;

  constructor(connection: PrometheusConnection) {
    this.driver = createPrometheusDriver(connection);
  }

  /** The alerting rules Prometheus has loaded (`/api/v1/rules`), for `check`. */
  async alertRules(): Promise<LoadedAlertRule[]> {
    try {
      return await loadedAlertRules(this.driver);
    } catch (reason) {
      throw toPrometheusError(reason);
    }
  }

  /** An instant query's series: labels and value. */
  async instant(
    query: string,
    at?: Date,
  ): Promise<{ labels: Record<string, string>; value: number }[]> {
    let answer;
    try {
      answer = await this.driver.instantQuery(query, at);
    } catch (reason) {
      throw toPrometheusError(reason);
    }
    if (answer.resultType !== 'vector')
      throw badResponse(`expected a vector, got ${answer.resultType}`);
    return (answer.result as InstantSeries[]).map((s) => ({
      labels: stringLabels(s.metric?.labels),
      value: Number(s.value?.value),
    }));
  }

  /**
   * The Deployments the rule covers in a namespace (all when undefined), found through
   * kube-state-metrics' `kube_replicaset_owner` at any time in [from, to].
   */
  async deployments(
    namespace: string | undefined,
    range: { from: Date; to: Date },
  ): Promise<Target[]> {
    const selector = [
      'owner_kind="Deployment"',
      ...(namespace ? [`namespace=${quoted(namespace)}`] : []),
    ];
    const lookback = formatDuration(
      Math.max(1000, Math.ceil((range.to.getTime() - range.from.getTime()) / 1000) * 1000),
    );
    const query = `group by (namespace, owner_name) (last_over_time(kube_replicaset_owner{${selector.join(', ')}}[${lookback}]))`;
    const series = await this.instant(query, range.to);
    return series
      .map((s) => s.labels)
      .filter((l) => l.namespace && l.owner_name)
      .map((l) => ({ namespace: l.namespace!, deployment: l.owner_name! }))
      .sort((a, b) =>
        `${a.namespace}/${a.deployment}`.localeCompare(`${b.namespace}/${b.deployment}`),
      );
  }

  /**
   * Per-pod CPU of one Deployment over the timeline, in chunks that Prometheus accepts.
   * `onChunk` is called after each chunk (for the progress bar).
   */
  async podCpu(
    target: Target,
    query: { timeline: Timeline; rateWindowMs: number },
    onChunk: () => void = () => undefined,
  ): Promise<DeploymentHistory> {
    const { timeline } = query;
    const expression = perPodCpuExpression(target, query.rateWindowMs);
    const pods = new Map<string, PodSeries>();
    const pending = chunks(timeline);
    // A few chunks at once: Prometheus evaluates them in parallel, and each lands in its own
    // steps of the timeline, so the order they complete in does not matter.
    const worker = async () => {
      for (let chunk = pending.shift(); chunk; chunk = pending.shift()) {
        const series = await this.range(expression, chunk[0], chunk[1], timeline.stepMs);
        for (const s of series) addSamples(pods, s, timeline);
        onChunk();
      }
    };
    await Promise.all(Array.from({ length: QUERY_CONCURRENCY }, worker));
    const sorted = [...pods.values()].sort((a, b) => a.name.localeCompare(b.name));
    return { ...target, timeline, pods: sorted };
  }

  /**
   * Any expression's series over the timeline (a guard's), in chunks: labels and the value at
   * each step (NaN where the series has none).
   */
  async rangeSeries(
    query: string,
    timeline: Timeline,
  ): Promise<{ labels: Record<string, string>; values: Float64Array }[]> {
    const series = new Map<string, LabelledSeries>();
    for (const [start, end] of chunks(timeline)) {
      const answer = await this.range(query, start, end, timeline.stepMs);
      for (const s of answer) addLabelledSeries(series, s, timeline);
    }
    return [...series.values()];
  }

  private async range(
    query: string,
    start: number,
    end: number,
    stepMs: number,
  ): Promise<RangeSeries[]> {
    let answer;
    try {
      answer = await this.driver.rangeQuery(query, new Date(start), new Date(end), stepMs / 1000);
    } catch (reason) {
      throw toPrometheusError(reason);
    }
    if (answer.resultType !== 'matrix')
      throw badResponse(`expected a matrix, got ${answer.resultType}`);
    return answer.result as RangeSeries[];
  }
}

interface LabelledSeries {
  labels: Record<string, string>;
  values: Float64Array;
}

/** Files one chunk's samples of a series under its labels (name included), by step. */
function addLabelledSeries(
  series: Map<string, LabelledSeries>,
  answer: RangeSeries,
  timeline: Timeline,
): void {
  const labels = stringLabels(answer.metric?.labels);
  const name = (answer.metric as { name?: unknown } | undefined)?.name;
  if (typeof name === 'string' && name) labels.__name__ = name;
  const key = JSON.stringify(Object.entries(labels).sort());
  let entry = series.get(key);
  if (!entry) {
    entry = { labels, values: new Float64Array(timeline.length).fill(NaN) };
    series.set(key, entry);
  }
  for (const sample of answer.values ?? []) {
    const index = stepIndex(sample.time, timeline);
    if (index >= 0) entry.values[index] = Number(sample.value);
  }
}

function badResponse(message: string): UpstreamError {
  return new UpstreamError('prometheus', 'bad-response', false, message);
}

function stringLabels(labels: Record<string, unknown> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (typeof value === 'string') result[key] = value;
  }
  return result;
}

/** The step a sample belongs to, or -1 when it is not on the timeline. */
function stepIndex(time: Date | undefined, timeline: Timeline): number {
  const index = Math.round(((time?.getTime() ?? NaN) - timeline.startMs) / timeline.stepMs);
  return index >= 0 && index < timeline.length ? index : -1;
}

/**
 * Checks each sample at the boundary (a `pod` label, a finite non-negative value, a time on the
 * timeline) and files it under its pod; anything else is left out, never guessed.
 */
function addSamples(pods: Map<string, PodSeries>, series: RangeSeries, timeline: Timeline): void {
  const pod = series.metric?.labels?.pod;
  if (typeof pod !== 'string') return;
  let entry = pods.get(pod);
  if (!entry) {
    entry = { name: pod, values: new Float64Array(timeline.length).fill(NaN) };
    pods.set(pod, entry);
  }
  for (const sample of series.values ?? []) {
    const value = Number(sample.value);
    const index = stepIndex(sample.time, timeline);
    if (index >= 0 && Number.isFinite(value) && value >= 0) entry.values[index] = value;
  }
}
