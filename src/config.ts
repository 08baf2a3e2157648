import { isNamespaceName } from './core/names.js';
import { readFileSync } from 'node:fs';
import { parseActionBudget, type ActionBudget } from './core/budget.js';
import { clusterMatcher, parseMatchers, type CpuSeriesSettings } from './core/cpu-series.js';
import { parseDuration } from './core/duration.js';
import { parseMinImprovement } from './core/policy.js';
import { ROTATIONS, type Rotation } from './core/rotation.js';
import { redactCredentials } from './errors.js';
import { parseActiveWindow, type ActiveWindow } from './core/window.js';
import { parsePolicyLimits, type PolicyLimit } from './core/policy-limits.js';
import { PROVENANCE_MODES, type ProvenanceMode } from './core/provenance.js';

/** Used only for alerts whose rule carries no `pod_rebalancer_threshold` annotation. */
export const DEFAULT_CPU_STDDEV_THRESHOLD = 0.3;
/** Used only for alerts whose rule carries no `pod_rebalancer_min_pods` annotation. */
export const DEFAULT_MIN_PODS = 3;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/** The service's configuration, validated and frozen at start. */
export interface Config {
  port: number;
  prometheusUrl: string;
  prometheusTimeoutMs: number;
  prometheusBearerTokenFile: string | undefined;
  prometheusBasicAuthUser: string | undefined;
  prometheusBasicAuthPasswordFile: string | undefined;
  prometheusCaFile: string | undefined;
  /** Extra request headers, e.g. X-Scope-OrgID for Mimir/Cortex. */
  prometheusHeaders: Readonly<Record<string, string>>;
  /** Which CPU series count (src/core/cpu-series.ts), cluster matcher included when enabled. */
  cpuSeries: CpuSeriesSettings;
  minSampleCoverage: number;
  cluster: string | undefined;
  clusterLabel: string;
  clusterInQuery: boolean;
  webhookDeadlineMs: number;
  webhookToken: string | undefined;
  webhookTokenFile: string | undefined;
  alertNames: ReadonlySet<string>;
  threshold: number;
  stateNamespace: string;
  namespaces: ReadonlySet<string> | undefined;
  excludeNamespaces: ReadonlySet<string>;
  requireOptIn: boolean;
  /** Undefined when ACTION_BUDGET is `off`. */
  actionBudget: ActionBudget | undefined;
  metricsWindowMs: number;
  cooldownMs: number;
  maxCooldownMs: number;
  effectiveReduction: number;
  ineffectiveLimit: number;
  minPods: number;
  minPodAgeMs: number;
  /** MIN_IMPROVEMENT, a share: used only for alerts that carry no pod_rebalancer_min_improvement. */
  minImprovement: number;
  action: 'evict' | 'delete';
  dryRun: boolean;
  activeWindow: ActiveWindow | undefined;
  guardQuery: string | undefined;
  /** How the two pods of an action go where the alert does not say (pod_rebalancer_rotation). */
  rotation: Rotation;
  rotationTimeoutMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  shutdownDelayMs: number;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  tlsClientCaFile: string | undefined;
  alertProvenance: ProvenanceMode;
  /** The rule engine's base URL (`/api/v1/rules` below it); PROMETHEUS_URL when unset. */
  rulesUrl: string;
  /** POLICY_LIMITS: bounds an alert's policy may not cross. */
  policyLimits: readonly PolicyLimit[];
  /** PROMETHEUS_MAX_RESPONSE in bytes: larger answers are an error, never an allocation. */
  prometheusMaxResponseBytes: number;
}

interface Setting<T> {
  doc: string;
  default?: string;
  /** Returns the value, or throws an Error saying what is expected. */
  parse: (text: string) => T;
  /** Never echo the value in an error. */
  secret?: boolean;
}

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

function integer(min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new Error(`expected a whole number from ${min} to ${max}`);
    }
    return value;
  };
}

function duration(minMs: number) {
  return (text: string): number => {
    const ms = parseDuration(text);
    if (ms === undefined) throw new Error('expected a duration such as 30s, 15m or 1h30m');
    if (ms < minMs) throw new Error(`expected at least ${minMs / 1000}s`);
    return ms;
  };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (text: string): T => {
    if (!(values as readonly string[]).includes(text)) {
      throw new Error(`expected one of ${values.join(', ')}`);
    }
    return text as T;
  };
}

/** Any text, as given (a value whose form the setting's consumer checks). */
function text(value: string): string {
  return value;
}

function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error('expected an http(s) URL such as http://prometheus:9090');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('expected an http(s) URL such as http://prometheus:9090');
  }
  return value.replace(/\/+$/, '');
}

function threshold(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new Error('expected a positive number of cores, e.g. 0.3');
  }
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n < 1))
    throw new Error('expected a share between 0 and 1, e.g. 0.3');
  return n;
}

/** A share in (0, 1], where 1 means all. */
function coverage(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1))
    throw new Error('expected a share above 0 and at most 1, e.g. 1 (every pod) or 0.9');
  return n;
}

function labelName(value: string): string {
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(value))
    throw new Error('expected a label name such as cluster');
  return value;
}

function matchers(value: string): readonly string[] {
  return parseMatchers(value);
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED_HEADERS = new Set(['authorization', 'host', 'content-type', 'content-length']);

/** `Name=value` pairs, comma-separated: X-Scope-OrgID=team-a. */
function headers(value: string): Readonly<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const pair of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const at = pair.indexOf('=');
    const name = pair.slice(0, at).trim();
    const headerValue = pair.slice(at + 1).trim();
    if (at <= 0 || !HEADER_NAME.test(name) || /[\r\n]/.test(headerValue)) {
      throw new Error(
        `expected Name=value pairs, comma-separated, e.g. X-Scope-OrgID=team-a (bad: ${name && HEADER_NAME.test(name) ? name : 'a pair without a valid header name'})`,
      );
    }
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new Error(
        `${name} cannot be set here (credentials go in PROMETHEUS_BEARER_TOKEN_FILE or PROMETHEUS_BASIC_AUTH_*)`,
      );
    }
    result[name] = headerValue;
  }
  return Object.freeze(result);
}

function boolean(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error('expected true or false');
}

function alertNames(value: string): ReadonlySet<string> {
  const names = value
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) throw new Error('expected one or more alertnames, comma-separated');
  return new Set(names);
}

function namespace(value: string): string {
  if (!isNamespaceName(value)) throw new Error('expected a namespace name such as pod-rebalancer');
  return value;
}

function namespaceList(value: string): ReadonlySet<string> {
  const names = value
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const bad = names.find((name) => !isNamespaceName(name));
  if (names.length === 0 || bad !== undefined) {
    throw new Error('expected namespace names, comma-separated, e.g. payments,checkout');
  }
  return new Set(names);
}

function actionBudget(value: string): ActionBudget | 'off' {
  return parseActionBudget(value) ?? 'off';
}

function minImprovement(value: string): number {
  const parsed = parseMinImprovement(value);
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed.value;
}

function promql(value: string): string {
  // Prometheus alone can say whether it parses (`check` asks it); here only that it is there.
  if (value.trim() === '') throw new Error('expected a PromQL expression');
  return value.trim();
}

function activeWindow(value: string): ActiveWindow {
  return parseActiveWindow(value);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** A size such as 8MiB, 512KiB or 1048576 (bytes): at least 1KiB, at most 1GiB. */
function size(value: string): number {
  const match = /^(\d+)(B|KiB|MiB|GiB)?$/.exec(value.trim());
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2] ?? '']! : NaN;
  if (!(bytes >= 1024 && bytes <= 1024 ** 3)) {
    throw new Error('expected a size from 1KiB to 1GiB, such as 8MiB or 512KiB');
  }
  return bytes;
}

/** Every variable the service reads: name, meaning, default and how its value is checked. */
export const SETTINGS = {
  PORT: setting({ doc: 'listen port', default: '8080', parse: integer(1, 65535) }),
  PROMETHEUS_URL: setting({ doc: 'Prometheus (or compatible) base URL', parse: httpUrl }),
  PROMETHEUS_TIMEOUT: setting({ doc: 'per-query timeout', default: '10s', parse: duration(100) }),
  PROMETHEUS_BEARER_TOKEN_FILE: setting({
    doc: 'file holding a bearer token for Prometheus (sent as Authorization: Bearer; re-read when it changes)',
    parse: text,
  }),
  PROMETHEUS_BASIC_AUTH_USER: setting({
    doc: 'user name for basic auth towards Prometheus (with PROMETHEUS_BASIC_AUTH_PASSWORD_FILE)',
    parse: text,
  }),
  PROMETHEUS_BASIC_AUTH_PASSWORD_FILE: setting({
    doc: 'file holding the basic-auth password (re-read when it changes)',
    parse: text,
  }),
  PROMETHEUS_CA_FILE: setting({
    doc: 'PEM file of the CA that signed an https Prometheus (re-read when it changes)',
    parse: text,
  }),
  PROMETHEUS_HEADERS: setting({
    doc: 'extra request headers, Name=value comma-separated, e.g. X-Scope-OrgID=team-a',
    parse: headers,
    // A header value may be an API key: an error names the header, never its value.
    secret: true,
  }),
  CPU_SERIES_MATCHERS: setting({
    doc: 'extra matchers for the CPU series, e.g. job="kubelet",metrics_path="/metrics/cadvisor"',
    parse: matchers,
  }),
  MIN_SAMPLE_COVERAGE: setting({
    doc: 'share (0-1] of eligible pods that must have a CPU sample',
    default: '1',
    parse: coverage,
  }),
  CLUSTER: setting({
    doc: "this cluster's name; alerts labelled with another are skipped",
    parse: text,
  }),
  CLUSTER_LABEL: setting({
    doc: 'the alert label naming the cluster',
    default: 'cluster',
    parse: labelName,
  }),
  CLUSTER_IN_QUERY: setting({
    doc: 'add CLUSTER_LABEL="CLUSTER" to the verification query (series carry the label)',
    default: 'false',
    parse: boolean,
  }),
  WEBHOOK_DEADLINE: setting({
    doc: 'the webhook answers within this; set Alertmanager webhook_config.timeout above it',
    default: '8s',
    parse: duration(1000),
  }),
  WEBHOOK_TOKEN: setting({ doc: 'bearer token Alertmanager sends', parse: text, secret: true }),
  WEBHOOK_TOKEN_FILE: setting({ doc: 'file of bearer tokens, one a line', parse: text }),
  ALERT_NAMES: setting({
    doc: 'alertnames acted on, comma-separated',
    default: 'DeploymentCPUImbalance',
    parse: alertNames,
  }),
  CPU_STDDEV_THRESHOLD: setting({
    doc: 'cores; used only for alerts that carry no pod_rebalancer_threshold annotation',
    default: String(DEFAULT_CPU_STDDEV_THRESHOLD),
    parse: threshold,
  }),
  STATE_NAMESPACE: setting({
    doc: 'where the Leases live (the manifests set it from the downward API)',
    default: 'pod-rebalancer',
    parse: namespace,
  }),
  NAMESPACES: setting({
    doc: 'comma-separated namespaces acted on (unset: all)',
    parse: namespaceList,
  }),
  EXCLUDE_NAMESPACES: setting({
    doc: 'comma-separated namespaces never acted on, in addition to STATE_NAMESPACE and every kube-* namespace',
    parse: namespaceList,
  }),
  REQUIRE_OPT_IN: setting({
    doc: 'true: only Deployments annotated pod-rebalancer.io/enabled: "true"',
    default: 'false',
    parse: boolean,
  }),
  ACTION_BUDGET: setting({
    doc: 'at most N actions (dry runs included) per rolling window, cluster-wide; off disables',
    default: '20/1h',
    parse: actionBudget,
  }),
  METRICS_WINDOW: setting({
    doc: 'rate() window of the verification query',
    default: '5m',
    parse: duration(1000),
  }),
  COOLDOWN: setting({ doc: 'per-Deployment cooldown', default: '15m', parse: duration(1000) }),
  MAX_COOLDOWN: setting({
    doc: 'ceiling of the adaptive cooldown',
    default: '24h',
    parse: duration(1000),
  }),
  EFFECTIVE_REDUCTION: setting({
    doc: 'share by which the stddev must fall for an action to count as effective',
    default: '0.3',
    parse: share,
  }),
  INEFFECTIVE_LIMIT: setting({
    doc: 'consecutive ineffective actions after which the service stops acting on a Deployment',
    default: '3',
    parse: integer(1, 100),
  }),
  MIN_PODS: setting({
    doc: 'fewest Ready pods with samples needed to act',
    default: String(DEFAULT_MIN_PODS),
    parse: integer(2, 100000),
  }),
  MIN_POD_AGE: setting({
    doc: 'younger pods are neither counted nor candidates',
    default: '10m',
    parse: duration(0),
  }),
  MIN_IMPROVEMENT: setting({
    doc: 'the predicted fall of the measure an action must promise; used only for alerts that carry no pod_rebalancer_min_improvement annotation',
    default: '10%',
    parse: minImprovement,
  }),
  ACTION: setting({
    doc: 'evict (honours PDBs) or delete',
    default: 'evict',
    parse: oneOf(['evict', 'delete'] as const),
  }),
  DRY_RUN: setting({ doc: 'decide and record, remove nothing', default: 'false', parse: boolean }),
  ACTIVE_WINDOW: setting({ doc: 'e.g. Mon-Fri 09:00-17:00 Europe/Berlin', parse: activeWindow }),
  GUARD_QUERY: setting({
    doc: 'PromQL; while it returns any series, no Deployment is acted on, e.g. ALERTS{alertstate="firing",severity="critical"}',
    parse: promql,
  }),
  ROTATION: setting({
    doc: 'together (both pods at once) or one-by-one; used only for alerts that carry no pod_rebalancer_rotation annotation',
    default: 'together',
    parse: oneOf(ROTATIONS),
  }),
  ROTATION_TIMEOUT: setting({
    doc: "how long the replacement of a one-by-one rotation's first pod may take to be Ready",
    default: '10m',
    parse: duration(1000),
  }),
  LOG_LEVEL: setting({ doc: 'winston level', default: 'info', parse: oneOf(LOG_LEVELS) }),
  SHUTDOWN_DELAY: setting({
    doc: 'after SIGTERM: not ready at once, but keep serving this long while endpoints are removed, then drain',
    default: '5s',
    parse: (value: string) => {
      const ms = duration(0)(value);
      // The pod's terminationGracePeriodSeconds (30s) must cover the delay and the drain after it.
      if (ms > 20_000) throw new Error('expected at most 20s');
      return ms;
    },
  }),
  TLS_CERT_FILE: setting({ doc: 'serve HTTPS with this certificate', parse: text }),
  TLS_KEY_FILE: setting({ doc: 'the private key of TLS_CERT_FILE', parse: text }),
  TLS_CLIENT_CA_FILE: setting({
    doc: 'require a client certificate signed by this CA',
    parse: text,
  }),
  ALERT_PROVENANCE: setting({
    doc: 'rules: act only on alerts the rule engine has active, with the same policy annotations; off: trust every alert that carries the token',
    default: 'rules',
    parse: oneOf(PROVENANCE_MODES),
  }),
  RULES_URL: setting({
    doc: "the rule engine's base URL (/api/v1/rules below it), e.g. vmalert's; PROMETHEUS_URL when unset",
    parse: httpUrl,
  }),
  POLICY_LIMITS: setting({
    doc: "bounds an alert rule's policy may not cross, e.g. threshold>=0.05,min_pods>=3; outside them: invalid-policy",
    parse: parsePolicyLimits,
  }),
  PROMETHEUS_MAX_RESPONSE: setting({
    doc: 'largest answer accepted from Prometheus or the rule engine; a larger one is an error',
    default: '8MiB',
    parse: size,
  }),
};

type Name = keyof typeof SETTINGS;
type Values = { [K in Name]: ReturnType<(typeof SETTINGS)[K]['parse']> | undefined };

/** Thrown when the environment is invalid; `problems` has one line per offending variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

function parseAll(env: NodeJS.ProcessEnv, problems: string[]): Values {
  const values: Partial<Record<Name, unknown>> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [Name, Setting<unknown>][]) {
    // An empty variable counts as unset, so its default applies.
    const raw = env[name] || spec.default;
    if (raw === undefined) continue;
    try {
      values[name] = spec.parse(raw);
    } catch (error) {
      const shown = spec.secret ? '' : ` (got "${redactCredentials(raw)}")`;
      problems.push(`${name}: ${(error as Error).message}${shown}`);
    }
  }
  return values as Values;
}

function crossCheck(v: Values, problems: string[]): void {
  checkRequired(v, problems);
  checkTls(v, problems);
  checkPrometheusAuth(v, problems);
  if (v.CLUSTER_IN_QUERY && v.CLUSTER === undefined) {
    problems.push('CLUSTER_IN_QUERY: needs CLUSTER (the value the series carry)');
  }
  if (v.COOLDOWN !== undefined && v.MAX_COOLDOWN !== undefined && v.MAX_COOLDOWN < v.COOLDOWN) {
    problems.push('MAX_COOLDOWN: expected at least COOLDOWN');
  }
}

function checkRequired(v: Values, problems: string[]): void {
  if (v.PROMETHEUS_URL === undefined && !problems.some((p) => p.startsWith('PROMETHEUS_URL'))) {
    problems.push('PROMETHEUS_URL: required, e.g. http://prometheus-operated.monitoring:9090');
  }
  if (v.WEBHOOK_TOKEN === undefined && v.WEBHOOK_TOKEN_FILE === undefined) {
    problems.push('WEBHOOK_TOKEN: required (or WEBHOOK_TOKEN_FILE, a file of tokens, one a line)');
  }
}

function checkPrometheusAuth(v: Values, problems: string[]): void {
  if (
    (v.PROMETHEUS_BASIC_AUTH_USER === undefined) !==
    (v.PROMETHEUS_BASIC_AUTH_PASSWORD_FILE === undefined)
  ) {
    problems.push(
      'PROMETHEUS_BASIC_AUTH_USER: PROMETHEUS_BASIC_AUTH_USER and PROMETHEUS_BASIC_AUTH_PASSWORD_FILE go together',
    );
  }
  if (v.PROMETHEUS_BASIC_AUTH_USER !== undefined && v.PROMETHEUS_BEARER_TOKEN_FILE !== undefined) {
    problems.push(
      'PROMETHEUS_BEARER_TOKEN_FILE: set either a bearer token or basic auth for Prometheus, not both',
    );
  }
}

function checkTls(v: Values, problems: string[]): void {
  if ((v.TLS_CERT_FILE === undefined) !== (v.TLS_KEY_FILE === undefined)) {
    problems.push('TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE go together');
  }
  if (v.TLS_CLIENT_CA_FILE !== undefined && v.TLS_CERT_FILE === undefined) {
    problems.push(
      'TLS_CLIENT_CA_FILE: needs TLS_CERT_FILE and TLS_KEY_FILE (client certificates need HTTPS)',
    );
  }
}

/**
 * Reads and validates the configuration from the environment. Every problem is collected and
 * reported together, one line per variable, so that one start shows everything to fix.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Readonly<Config> {
  const problems: string[] = [];
  const v = parseAll(env, problems);
  crossCheck(v, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    port: v.PORT!,
    prometheusUrl: v.PROMETHEUS_URL!,
    prometheusTimeoutMs: v.PROMETHEUS_TIMEOUT!,
    prometheusBearerTokenFile: v.PROMETHEUS_BEARER_TOKEN_FILE,
    prometheusBasicAuthUser: v.PROMETHEUS_BASIC_AUTH_USER,
    prometheusBasicAuthPasswordFile: v.PROMETHEUS_BASIC_AUTH_PASSWORD_FILE,
    prometheusCaFile: v.PROMETHEUS_CA_FILE,
    prometheusHeaders: v.PROMETHEUS_HEADERS ?? {},
    cpuSeries: {
      extraMatchers: v.CPU_SERIES_MATCHERS ?? [],
      clusterMatcher: v.CLUSTER_IN_QUERY ? clusterMatcher(v.CLUSTER_LABEL!, v.CLUSTER!) : undefined,
    },
    minSampleCoverage: v.MIN_SAMPLE_COVERAGE!,
    cluster: v.CLUSTER,
    clusterLabel: v.CLUSTER_LABEL!,
    clusterInQuery: v.CLUSTER_IN_QUERY!,
    webhookDeadlineMs: v.WEBHOOK_DEADLINE!,
    webhookToken: v.WEBHOOK_TOKEN,
    webhookTokenFile: v.WEBHOOK_TOKEN_FILE,
    alertNames: v.ALERT_NAMES!,
    threshold: v.CPU_STDDEV_THRESHOLD!,
    stateNamespace: v.STATE_NAMESPACE!,
    namespaces: v.NAMESPACES,
    excludeNamespaces: v.EXCLUDE_NAMESPACES ?? new Set<string>(),
    requireOptIn: v.REQUIRE_OPT_IN!,
    actionBudget: v.ACTION_BUDGET === 'off' ? undefined : v.ACTION_BUDGET,
    metricsWindowMs: v.METRICS_WINDOW!,
    cooldownMs: v.COOLDOWN!,
    maxCooldownMs: v.MAX_COOLDOWN!,
    effectiveReduction: v.EFFECTIVE_REDUCTION!,
    ineffectiveLimit: v.INEFFECTIVE_LIMIT!,
    minPods: v.MIN_PODS!,
    minPodAgeMs: v.MIN_POD_AGE!,
    minImprovement: v.MIN_IMPROVEMENT!,
    action: v.ACTION!,
    dryRun: v.DRY_RUN!,
    activeWindow: v.ACTIVE_WINDOW,
    guardQuery: v.GUARD_QUERY,
    rotation: v.ROTATION!,
    rotationTimeoutMs: v.ROTATION_TIMEOUT!,
    logLevel: v.LOG_LEVEL!,
    shutdownDelayMs: v.SHUTDOWN_DELAY!,
    tlsCertFile: v.TLS_CERT_FILE,
    tlsKeyFile: v.TLS_KEY_FILE,
    tlsClientCaFile: v.TLS_CLIENT_CA_FILE,
    alertProvenance: v.ALERT_PROVENANCE!,
    rulesUrl: v.RULES_URL ?? v.PROMETHEUS_URL!,
    policyLimits: v.POLICY_LIMITS ?? [],
    prometheusMaxResponseBytes: v.PROMETHEUS_MAX_RESPONSE!,
  });
}

/**
 * The first line of the secret file a variable names, or undefined when it names none. A file
 * that cannot be read is a configuration problem naming the variable; the content is never shown.
 */
export function readSecretFile(path: string | undefined, variable: string): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/)[0]!.trim();
  } catch (error) {
    throw new ConfigError([
      `${variable}: cannot read the file (${(error as NodeJS.ErrnoException).code})`,
    ]);
  }
}
