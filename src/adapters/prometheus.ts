import { PrometheusDriver } from 'prometheus-query';
import { formatDuration } from '../core/duration.js';
import type { CpuSamples } from '../core/types.js';
import { UpstreamError } from '../errors.js';
import type { GuardAnswer, Series } from '../core/guard.js';
import type { GuardSource, MetricsSource, PodCpuQuery } from '../ports.js';

/** Escapes a pod name for a PromQL regex inside a double-quoted string. */
function podAlternation(pods: readonly string[]): string {
  return pods.map((pod) => pod.replace(/[.\\]/g, (c) => `\\\\${c}`)).join('|');
}

/**
 * The verification query: per-pod CPU in cores over the window. `container!=""` drops the
 * pod-level cgroup series and `container!="POD"` the pause container; both would count twice.
 */
export function podCpuQuery(query: PodCpuQuery): string {
  const selector = [
    `namespace="${query.namespace}"`,
    `pod=~"${podAlternation(query.pods)}"`,
    'container!=""',
    'container!="POD"',
  ].join(', ');
  return `sum by (pod) (rate(container_cpu_usage_seconds_total{${selector}}[${formatDuration(query.windowMs)}]))`;
}

interface PromError {
  errorType?: string;
  error?: string;
  httpStatus?: number;
}

/**
 * Classifies prometheus-query's rejections (plain objects, not Errors). Unreachable, timed out
 * or 5xx: retryable. A 4xx means our query is wrong: a retry would not help.
 */
export function toPrometheusError(reason: unknown): UpstreamError {
  const { errorType = 'unknown', error, httpStatus } = (reason ?? {}) as PromError;
  const transport = TRANSPORT_ERRORS[errorType];
  if (transport) return new UpstreamError('prometheus', transport[0], true, transport[1]);
  if (errorType !== 'http_error' || httpStatus === undefined) {
    return new UpstreamError(
      'prometheus',
      'bad-response',
      true,
      'Prometheus answered something that is not its API',
    );
  }
  if (httpStatus >= 500 || httpStatus === 429) {
    return new UpstreamError('prometheus', 'server', true, `Prometheus answered ${httpStatus}`);
  }
  return new UpstreamError(
    'prometheus',
    'client',
    false,
    `Prometheus refused the query (${httpStatus}): ${error ?? ''}`,
  );
}

const TRANSPORT_ERRORS: Record<string, [kind: string, message: string]> = {
  timeout_error: ['timeout', 'Prometheus query timed out'],
  network_error: ['network', 'Prometheus unreachable'],
  ssl_error: ['network', 'Prometheus unreachable (TLS)'],
};

interface Sample {
  metric?: { labels?: Record<string, unknown> };
  value?: { value?: unknown };
}

/**
 * Checks the answer at the boundary: a vector, one `pod` label per series, finite non-negative
 * values. A series that breaks this is dropped (the pod then has no sample, never a guess).
 */
export function toSamples(resultType: string, result: readonly Sample[]): CpuSamples {
  if (resultType !== 'vector') {
    throw new UpstreamError(
      'prometheus',
      'bad-response',
      false,
      `expected a vector, got ${resultType}`,
    );
  }
  const samples = new Map<string, number>();
  for (const series of result) {
    const pod = series.metric?.labels?.pod;
    const value = Number(series.value?.value);
    if (typeof pod === 'string' && Number.isFinite(value) && value >= 0) samples.set(pod, value);
  }
  return samples;
}

export interface PrometheusOptions {
  url: string;
  timeoutMs: number;
  /** Sent as `Authorization: Bearer`, never logged. */
  bearerToken?: string;
}

/** A prometheus-query client: POST (long pod lists stay out of URL limits), bearer auth. */
export function createPrometheusDriver(options: PrometheusOptions): PrometheusDriver {
  return new PrometheusDriver({
    endpoint: options.url,
    baseURL: '/api/v1',
    timeout: options.timeoutMs,
    preferPost: true,
    headers: options.bearerToken ? { Authorization: `Bearer ${options.bearerToken}` } : {},
  });
}

/**
 * Prometheus refusing the expression itself (400 with errorType bad_data: a PromQL syntax error):
 * its message, or undefined for any other failure.
 */
export function rejectedExpression(reason: unknown): string | undefined {
  const { httpStatus, prometheus } = (reason ?? {}) as PromError & {
    prometheus?: { errorType?: string; error?: string };
  };
  if (httpStatus !== 400 || prometheus?.errorType !== 'bad_data') return undefined;
  return prometheus.error ?? 'bad_data';
}

/**
 * Checks a guard's answer at the boundary: a guard is a set of series, so only a vector is an
 * answer; a scalar or a range vector is an expression that cannot be a guard (rejected).
 */
export function toGuardAnswer(resultType: string, result: readonly Sample[]): GuardAnswer {
  if (resultType !== 'vector') {
    return { rejected: `a guard must return an instant vector, this returns a ${resultType}` };
  }
  const series: Series[] = result.map((s) => {
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(s.metric?.labels ?? {})) {
      if (typeof value === 'string') labels[key] = value;
    }
    const name = (s.metric as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string' && name !== '') labels.__name__ = name;
    return { labels, value: Number(s.value?.value) };
  });
  return { series };
}

/** The MetricsSource over Prometheus's HTTP API (or anything that speaks it). */
export class PrometheusMetricsSource implements MetricsSource, GuardSource {
  private readonly driver: PrometheusDriver;

  constructor(options: PrometheusOptions) {
    this.driver = createPrometheusDriver(options);
  }

  async podCpu(query: PodCpuQuery): Promise<CpuSamples> {
    if (query.pods.length === 0) return new Map();
    let answer;
    try {
      answer = await this.driver.instantQuery(podCpuQuery(query), query.at);
    } catch (reason) {
      throw toPrometheusError(reason);
    }
    return toSamples(answer.resultType, answer.result as Sample[]);
  }

  /** A guard, evaluated as an instant query (see GuardSource). */
  async guardSeries(expr: string, at?: Date): Promise<GuardAnswer> {
    let answer;
    try {
      answer = await this.driver.instantQuery(expr, at);
    } catch (reason) {
      const rejected = rejectedExpression(reason);
      if (rejected !== undefined) return { rejected };
      throw toPrometheusError(reason);
    }
    return toGuardAnswer(answer.resultType, answer.result as Sample[]);
  }
}
