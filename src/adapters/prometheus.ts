import { Agent as HttpsAgent } from 'node:https';
import { PrometheusDriver, type PrometheusConnectionOptions } from 'prometheus-query';
import {
  cpuSeriesSelector,
  DEFAULT_CPU_SERIES,
  type CpuSeriesSettings,
} from '../core/cpu-series.js';
import { formatDuration } from '../core/duration.js';
import type { CpuSamples } from '../core/types.js';
import { upstreamTimeoutMs } from '../deadline.js';
import { UpstreamError } from '../errors.js';
import { boundedGuardQuery, type GuardAnswer } from '../core/guard.js';
import type { GuardSource, MetricsSource, PodCpuQuery } from '../ports.js';
import { limiter } from '../concurrency.js';
import { firstLine, WatchedFile } from './secret-file.js';

/** Escapes a pod name for a PromQL regex inside a double-quoted string. */
function podAlternation(pods: readonly string[]): string {
  return pods.map((pod) => pod.replace(/[.\\]/g, (c) => `\\\\${c}`)).join('|');
}

/**
 * The verification query: per-pod CPU in cores over the window, over the CPU series that count
 * (src/core/cpu-series.ts: the same matchers as the recording rule in rules/).
 */
export function podCpuQuery(
  query: PodCpuQuery,
  series: CpuSeriesSettings = DEFAULT_CPU_SERIES,
): string {
  const selector = cpuSeriesSelector(series, [
    `namespace="${query.namespace}"`,
    `pod=~"${podAlternation(query.pods)}"`,
  ]);
  return `sum by (pod) (rate(${selector}[${formatDuration(query.windowMs)}]))`;
}

/** How to reach and authenticate to Prometheus or a compatible backend. */
export interface PrometheusConnection {
  url: string;
  timeoutMs: number;
  /** Sent as `Authorization: Bearer`, re-read when the file changes (a rotated token). */
  bearerTokenFile?: string;
  /** Basic auth; the password file is re-read when it changes. */
  basicAuth?: { user: string; passwordFile: string };
  /** CA bundle (PEM) for an https backend with a private CA; re-read when it changes. */
  caFile?: string;
  /** Extra headers, e.g. `X-Scope-OrgID` for Mimir/Cortex. */
  headers?: Readonly<Record<string, string>>;
  /** How often the files are checked for a change (default 1 s). */
  recheckMs?: number;
  /** Largest answer accepted, in bytes (PROMETHEUS_MAX_RESPONSE; default 8 MiB). */
  maxResponseBytes?: number;
}

/** PROMETHEUS_MAX_RESPONSE's default: far above any answer the service asks for. */
const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * Queries in flight at once per client (so per replica): a payload of a thousand alerts over
 * many namespaces queues its queries here instead of opening hundreds against Prometheus.
 */
export const QUERIES_IN_FLIGHT = 8;

/** The connection the configuration describes. */
export function prometheusConnection(config: {
  prometheusUrl: string;
  prometheusTimeoutMs: number;
  prometheusBearerTokenFile?: string;
  prometheusBasicAuthUser?: string;
  prometheusBasicAuthPasswordFile?: string;
  prometheusCaFile?: string;
  prometheusHeaders?: Readonly<Record<string, string>>;
  prometheusMaxResponseBytes?: number;
}): PrometheusConnection {
  const { prometheusBasicAuthUser: user, prometheusBasicAuthPasswordFile: passwordFile } = config;
  return {
    url: config.prometheusUrl,
    timeoutMs: config.prometheusTimeoutMs,
    bearerTokenFile: config.prometheusBearerTokenFile,
    basicAuth: user !== undefined && passwordFile ? { user, passwordFile } : undefined,
    caFile: config.prometheusCaFile,
    headers: config.prometheusHeaders,
    maxResponseBytes: config.prometheusMaxResponseBytes,
  };
}

/** A non-2xx HTTP answer, kept with its status whatever its body (JSON, text/plain, HTML). */
class HttpAnswer extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    /** The API's `errorType` when the body is the API's JSON (`bad_data` for a parse error). */
    readonly errorType?: string,
  ) {
    super(`HTTP ${status}`);
  }
}

/** A 200 the backend itself marks incomplete: warnings (Thanos) or `isPartial` (VictoriaMetrics). */
class IncompleteAnswer extends Error {}

/** A credentials or CA file that could never be read. */
class UnreadableFile extends Error {}

/** What axios says when an answer passed maxContentLength (it stops reading and rejects). */
const TOO_LARGE = /^maxContentLength size of (\d+) exceeded/;

/** "8 MiB", "512 KiB" or bytes: a size as PROMETHEUS_MAX_RESPONSE is written. */
function formatSize(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes} bytes`;
}

/** An answer larger than PROMETHEUS_MAX_RESPONSE, named with the limit; else undefined. */
function tooLarge(cause: unknown): UpstreamError | undefined {
  const match = TOO_LARGE.exec(String((cause as { message?: unknown } | undefined)?.message ?? ''));
  if (!match) return undefined;
  return new UpstreamError(
    'prometheus',
    'too-large',
    false,
    `the answer was larger than PROMETHEUS_MAX_RESPONSE (${formatSize(Number(match[1]))}); it was not read`,
  );
}

/** What the backend said, short: the API's `error` field, else the start of the body. */
function describeBody(data: unknown): string {
  if (data && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string') {
    return (data as { error: string }).error;
  }
  const text = typeof data === 'string' ? data : data === undefined ? '' : JSON.stringify(data);
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

function errorTypeOf(data: unknown): string | undefined {
  const errorType = (data as { errorType?: unknown } | undefined)?.errorType;
  return typeof errorType === 'string' ? errorType : undefined;
}

/** Why a successful answer cannot be trusted as complete, or undefined. */
export function incompleteness(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const { warnings, isPartial } = body as { warnings?: unknown; isPartial?: unknown };
  if (isPartial === true) return 'the backend marked the answer partial (isPartial)';
  if (Array.isArray(warnings) && warnings.length > 0) {
    return `the answer carries warnings: ${warnings.map(String).join('; ').slice(0, 300)}`;
  }
  return undefined;
}

/** What a backend says when one of its stores or proxies failed, not the query. */
const STORE_FAILURE = /\b(store|proxy|rpc error|unavailable|receive series)\b/i;

/**
 * A 422 that may pass: the query could not be executed (`errorType: execution`), or the body
 * names a store or proxy failure. Thanos answers so when a store is down and partial responses
 * are refused; read as final, the alert would wait Alertmanager's repeat_interval (hours).
 */
function failedExecution(status: number, detail: string, errorType: string | undefined): boolean {
  return status === 422 && (errorType === 'execution' || STORE_FAILURE.test(detail));
}

/**
 * Classifies an HTTP status first, whatever the body says: 5xx, 429 and 408 may pass
 * (retryable, 503 to Alertmanager), and so may a 422 whose execution failed (see
 * failedExecution); any other 4xx is an answer a retry will not change (a missing tenant
 * header, a wrong token, a bad query such as 400 `bad_data`): `prometheus-error`, 200.
 */
function statusError(status: number, detail: string, errorType?: string): UpstreamError {
  const said = detail ? `: ${detail}` : '';
  if (
    status >= 500 ||
    status === 429 ||
    status === 408 ||
    failedExecution(status, detail, errorType)
  ) {
    return new UpstreamError('prometheus', 'server', true, `Prometheus answered ${status}${said}`);
  }
  const kind = status === 401 || status === 403 ? 'forbidden' : 'client';
  return new UpstreamError(
    'prometheus',
    kind,
    false,
    `Prometheus refused the query (${status})${said}`,
  );
}

/**
 * A guard's failure without the backend's own words: an execution error quotes series (e.g.
 * "found duplicate series for the match group {...}"), and a guard is any PromQL a rule's author
 * wrote, run with the service's credentials. What failed and whether to retry stay.
 */
function withoutBackendWords(error: UpstreamError): UpstreamError {
  const how = error.retryable ? 'a retry may succeed' : 'a retry will not change it';
  return new UpstreamError(
    error.upstream,
    error.kind,
    error.retryable,
    `Prometheus could not evaluate the guard (${error.kind}; ${how}); its message is not repeated, it may quote series`,
  );
}

interface PromError {
  errorType?: string;
  error?: string;
  httpStatus?: number;
  original?: unknown;
}

/**
 * Classifies prometheus-query's rejections (plain objects, not Errors). What our interceptors
 * threw comes back as `original`: an HTTP status, an incomplete answer, an unreadable file.
 * Unreachable or timed out: retryable.
 */
export function toPrometheusError(reason: unknown): UpstreamError {
  const { original } = (reason ?? {}) as PromError;
  const ours = fromInterceptor(original ?? reason);
  if (ours) return ours;
  const { errorType = 'unknown', error, httpStatus } = innermost(reason);
  const transport = TRANSPORT_ERRORS[errorType];
  if (transport) return new UpstreamError('prometheus', transport[0], true, transport[1]);
  if (errorType === 'http_error' && httpStatus !== undefined) {
    return statusError(httpStatus, error ?? '');
  }
  return new UpstreamError(
    'prometheus',
    'bad-response',
    true,
    'Prometheus answered something that is not its API',
  );
}

/**
 * prometheus-query rejects a 200 that is not its API with `client_error`, then re-wraps that
 * rejection as a `network_error` whose `original` it is: the inner one says what happened.
 */
function innermost(reason: unknown): PromError {
  const outer = (reason ?? {}) as PromError;
  const inner = outer.original as PromError | undefined;
  return inner && typeof inner === 'object' && inner.errorType ? inner : outer;
}

/** What our interceptors threw, classified; undefined for anything else. */
function fromInterceptor(cause: unknown): UpstreamError | undefined {
  const large = tooLarge(cause);
  if (large) return large;
  if (cause instanceof HttpAnswer) return statusError(cause.status, cause.detail, cause.errorType);
  if (cause instanceof IncompleteAnswer) {
    return new UpstreamError('prometheus', 'partial', true, `incomplete answer: ${cause.message}`);
  }
  if (cause instanceof UnreadableFile) {
    return new UpstreamError('prometheus', 'credentials', true, cause.message);
  }
  return undefined;
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

type RequestConfig = Parameters<
  NonNullable<PrometheusConnectionOptions['requestInterceptor']>['onFulfilled']
>[0];

/** The files of a connection, read on each request (cheap: stat at most once a second). */
class ConnectionFiles {
  private readonly token?: WatchedFile;
  private readonly password?: WatchedFile;
  private readonly ca?: WatchedFile;
  private agent?: { pem: string; agent: HttpsAgent };

  constructor(private readonly connection: PrometheusConnection) {
    const recheck = connection.recheckMs;
    if (connection.bearerTokenFile)
      this.token = new WatchedFile(connection.bearerTokenFile, recheck);
    if (connection.basicAuth)
      this.password = new WatchedFile(connection.basicAuth.passwordFile, recheck);
    if (connection.caFile) this.ca = new WatchedFile(connection.caFile, recheck);
  }

  async authorization(): Promise<string | undefined> {
    if (this.token) return `Bearer ${firstLine(await readOrFail(this.token, 'bearer token'))}`;
    if (this.password && this.connection.basicAuth) {
      const password = firstLine(await readOrFail(this.password, 'basic-auth password'));
      const pair = `${this.connection.basicAuth.user}:${password}`;
      return `Basic ${Buffer.from(pair).toString('base64')}`;
    }
    return undefined;
  }

  /** An https agent trusting the CA file, rebuilt when the file changes. */
  async httpsAgent(): Promise<HttpsAgent | undefined> {
    if (!this.ca) return undefined;
    const pem = await readOrFail(this.ca, 'CA');
    // A new CA gets a new agent; requests still in flight finish on the old one.
    if (this.agent?.pem !== pem) this.agent = { pem, agent: new HttpsAgent({ ca: pem }) };
    return this.agent.agent;
  }
}

async function readOrFail(file: WatchedFile, what: string): Promise<string> {
  try {
    return await file.read();
  } catch {
    throw new UnreadableFile(`cannot read the ${what} file ${file.path}`);
  }
}

/**
 * Asks Thanos (`partial_response`) and VictoriaMetrics (`deny_partial_response`) for all or
 * nothing, and a query to give up on the server's side (`timeout`) when the client does.
 */
function queryParameters(config: RequestConfig, timeoutMs: number): void {
  const form = config.method?.toUpperCase() === 'POST' ? config.data : config.params;
  if (form instanceof URLSearchParams) {
    form.set('partial_response', 'false');
    form.set('deny_partial_response', '1');
    if (form.has('query')) form.set('timeout', `${Math.max(1, Math.floor(timeoutMs))}ms`);
  }
}

/**
 * A prometheus-query client: POST (long pod lists stay out of URL limits). prometheus-query
 * sends only `query`, `time` and `timeout` and hands back only `data`, so its request and
 * response interceptors (its lower-level hooks) carry the rest: the credentials, CA and headers
 * read fresh for each request, the per-call timeout from the request's deadline, the
 * partial-response parameters, and the answer's `warnings` / `isPartial` and HTTP status, which
 * its own handling drops (its warningHook reads `warnings` off the HTTP response, not the body).
 */
export function createPrometheusDriver(connection: PrometheusConnection): PrometheusDriver {
  const files = new ConnectionFiles(connection);
  return new PrometheusDriver({
    endpoint: connection.url,
    baseURL: '/api/v1',
    timeout: connection.timeoutMs,
    preferPost: true,
    requestInterceptor: {
      onFulfilled: async (config) => {
        for (const [name, value] of Object.entries(connection.headers ?? {})) {
          config.headers.set(name, value);
        }
        const authorization = await files.authorization();
        if (authorization) config.headers.set('Authorization', authorization);
        const agent = await files.httpsAgent();
        if (agent) config.httpsAgent = agent;
        config.timeout = upstreamTimeoutMs(connection.timeoutMs);
        // Axios stops reading past this and rejects: a huge answer is an error, not a heap.
        config.maxContentLength = connection.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
        queryParameters(config, config.timeout);
        return config;
      },
    },
    responseInterceptor: {
      onFulfilled: (response) => {
        const incomplete = incompleteness(response.data);
        if (incomplete) throw new IncompleteAnswer(incomplete);
        return response;
      },
      onRejected: (error: { response?: { status: number; data?: unknown } }) => {
        if (error?.response) {
          const { status, data } = error.response;
          throw new HttpAnswer(status, describeBody(data), errorTypeOf(data));
        }
        throw error;
      },
    },
  });
}

/**
 * Prometheus refusing the expression itself (400 with errorType bad_data: a PromQL syntax error):
 * its message, or undefined for any other failure.
 */
export function rejectedExpression(reason: unknown): string | undefined {
  const { original } = (reason ?? {}) as PromError;
  const cause = original ?? reason;
  if (!(cause instanceof HttpAnswer) || cause.status !== 400) return undefined;
  return cause.errorType === 'bad_data' ? cause.detail || 'bad_data' : undefined;
}

/**
 * Checks a guard's answer at the boundary. The guard is sent as `count(expr)`: its answer is at
 * most one sample, the number of series the guard returns (none when it returns none). A scalar
 * or a range vector cannot be counted: Prometheus refuses those (rejected).
 */
export function toGuardAnswer(resultType: string, result: readonly Sample[]): GuardAnswer {
  if (resultType !== 'vector') {
    return { rejected: `a guard must return an instant vector, this returns a ${resultType}` };
  }
  const count = result.reduce((sum, s) => sum + (Number(s.value?.value) || 0), 0);
  return { count };
}

/** The MetricsSource over Prometheus's HTTP API (or anything that speaks it). */
export class PrometheusMetricsSource implements MetricsSource, GuardSource {
  private readonly driver: PrometheusDriver;
  private readonly inFlight = limiter(QUERIES_IN_FLIGHT);

  constructor(
    connection: PrometheusConnection,
    private readonly series: CpuSeriesSettings = DEFAULT_CPU_SERIES,
  ) {
    this.driver = createPrometheusDriver(connection);
  }

  async podCpu(query: PodCpuQuery): Promise<CpuSamples> {
    if (query.pods.length === 0) return new Map();
    let answer;
    try {
      const promql = podCpuQuery(query, this.series);
      answer = await this.inFlight(() => this.driver.instantQuery(promql, query.at));
    } catch (reason) {
      throw toPrometheusError(reason);
    }
    return toSamples(answer.resultType, answer.result as Sample[]);
  }

  /** A guard, counted by Prometheus in an instant query (see GuardSource). */
  async guardSeries(expr: string, at?: Date): Promise<GuardAnswer> {
    let answer;
    try {
      const promql = boundedGuardQuery(expr);
      answer = await this.inFlight(() => this.driver.instantQuery(promql, at));
    } catch (reason) {
      const rejected = rejectedExpression(reason);
      if (rejected !== undefined) return { rejected };
      throw withoutBackendWords(toPrometheusError(reason));
    }
    return toGuardAnswer(answer.resultType, answer.result as Sample[]);
  }
}
