import { readFileSync } from 'node:fs';
import { parseDuration } from './core/duration.js';
import { parseActiveWindow, type ActiveWindow } from './core/window.js';

/** The alert rule in rules/ uses the same number; test/rules/threshold-drift.test.ts keeps them equal. */
export const DEFAULT_CPU_STDDEV_THRESHOLD = 0.3;
/** The rule's guard on the number of pods; kept equal by the same drift test. */
export const DEFAULT_MIN_PODS = 3;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/** The service's configuration, validated and frozen at start. */
export interface Config {
  port: number;
  prometheusUrl: string;
  prometheusTimeoutMs: number;
  prometheusBearerTokenFile: string | undefined;
  webhookToken: string | undefined;
  webhookTokenFile: string | undefined;
  alertNames: ReadonlySet<string>;
  threshold: number;
  metricsWindowMs: number;
  cooldownMs: number;
  maxCooldownMs: number;
  effectiveReduction: number;
  ineffectiveLimit: number;
  minPods: number;
  minPodAgeMs: number;
  action: 'evict' | 'delete';
  dryRun: boolean;
  activeWindow: ActiveWindow | undefined;
  guardQuery: string | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
  shutdownDelayMs: number;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  tlsClientCaFile: string | undefined;
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

function promql(value: string): string {
  // Prometheus alone can say whether it parses (`check` asks it); here only that it is there.
  if (value.trim() === '') throw new Error('expected a PromQL expression');
  return value.trim();
}

function activeWindow(value: string): ActiveWindow {
  return parseActiveWindow(value);
}

/** Every variable the service reads: name, meaning, default and how its value is checked. */
export const SETTINGS = {
  PORT: setting({ doc: 'listen port', default: '8080', parse: integer(1, 65535) }),
  PROMETHEUS_URL: setting({ doc: 'Prometheus (or compatible) base URL', parse: httpUrl }),
  PROMETHEUS_TIMEOUT: setting({ doc: 'per-query timeout', default: '10s', parse: duration(100) }),
  PROMETHEUS_BEARER_TOKEN_FILE: setting({
    doc: 'file holding a bearer token for Prometheus (sent as Authorization: Bearer)',
    parse: text,
  }),
  WEBHOOK_TOKEN: setting({ doc: 'bearer token Alertmanager sends', parse: text, secret: true }),
  WEBHOOK_TOKEN_FILE: setting({ doc: 'file of bearer tokens, one a line', parse: text }),
  ALERT_NAMES: setting({
    doc: 'alertnames acted on, comma-separated',
    default: 'DeploymentCPUImbalance',
    parse: alertNames,
  }),
  CPU_STDDEV_THRESHOLD: setting({
    doc: 'cores; must agree with the rule in rules/',
    default: String(DEFAULT_CPU_STDDEV_THRESHOLD),
    parse: threshold,
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
};

type Name = keyof typeof SETTINGS;
type Values = { [K in Name]: ReturnType<(typeof SETTINGS)[K]['parse']> | undefined };

/** Hides a password in a URL-like value (user:password@host) before it is shown in an error. */
function withoutCredentials(value: string): string {
  return value.replace(/\/\/[^/@\s]*@/, '//***@');
}

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
      const shown = spec.secret ? '' : ` (got "${withoutCredentials(raw)}")`;
      problems.push(`${name}: ${(error as Error).message}${shown}`);
    }
  }
  return values as Values;
}

function crossCheck(v: Values, problems: string[]): void {
  checkRequired(v, problems);
  checkTls(v, problems);
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
    webhookToken: v.WEBHOOK_TOKEN,
    webhookTokenFile: v.WEBHOOK_TOKEN_FILE,
    alertNames: v.ALERT_NAMES!,
    threshold: v.CPU_STDDEV_THRESHOLD!,
    metricsWindowMs: v.METRICS_WINDOW!,
    cooldownMs: v.COOLDOWN!,
    maxCooldownMs: v.MAX_COOLDOWN!,
    effectiveReduction: v.EFFECTIVE_REDUCTION!,
    ineffectiveLimit: v.INEFFECTIVE_LIMIT!,
    minPods: v.MIN_PODS!,
    minPodAgeMs: v.MIN_POD_AGE!,
    action: v.ACTION!,
    dryRun: v.DRY_RUN!,
    activeWindow: v.ACTIVE_WINDOW,
    guardQuery: v.GUARD_QUERY,
    logLevel: v.LOG_LEVEL!,
    shutdownDelayMs: v.SHUTDOWN_DELAY!,
    tlsCertFile: v.TLS_CERT_FILE,
    tlsKeyFile: v.TLS_KEY_FILE,
    tlsClientCaFile: v.TLS_CLIENT_CA_FILE,
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
