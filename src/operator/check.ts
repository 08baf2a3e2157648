import { KubeConfig } from '@kubernetes/client-node';
import { describeCluster } from '../adapters/kubeconfig.js';
import { createKubeApis, toUpstreamError, type KubeApis } from '../adapters/kubernetes.js';
import { prometheusConnection, type PrometheusConnection } from '../adapters/prometheus.js';
import { ConfigError, loadConfig, readSecretFile, SETTINGS } from '../config.js';
import { PrometheusMetricsSource } from '../adapters/prometheus.js';
import { WATCH_TIMING } from '../adapters/watch-cache.js';
import { cpuSeriesSelector } from '../core/cpu-series.js';
import { formatDuration } from '../core/duration.js';
import { redactCredentials } from '../errors.js';
import { realAdapters } from '../main.js';
import {
  CLUSTER_FLAGS,
  CLUSTER_FLAGS_USAGE,
  clusterKubeConfig,
  EXIT,
  parseFlags,
  rejectPositionals,
  type ExitCode,
  type OperatorIo,
} from './command.js';
import type { CheckResult } from './check-result.js';
import { PrometheusHistory } from './history.js';
import { judgeAlertRules } from './rule-loaded.js';
import { provenanceCheck } from './check-provenance.js';
import { checkAlertmanagerRouting } from './alertmanager-routing.js';

export const CHECK_USAGE = `usage: pod-rebalancer check [flags]

Validates the configuration, reaches Prometheus (the series the rule reads, and the alert rules
of ALERT_NAMES loaded and healthy) and the Kubernetes API, and verifies each permission the
service needs. One line per check: ok or FAIL, and what to do.

  --namespace NS   check the permissions in this namespace (default: all namespaces)
  --alertmanager URL
                   check only where this Alertmanager's running configuration sends the alerts
                   of ALERT_NAMES (a Deployment in --namespace, default "default"): to this
                   service's webhook, or which receiver instead, with the fix
  --json           print the checks as JSON
${CLUSTER_FLAGS_USAGE}`;

/** `--kubeconfig` and `--context`, for the commands that reach the cluster. */
type ClusterFlags = { kubeconfig?: string; context?: string };

export type { CheckResult } from './check-result.js';

/** One permission the service needs (deploy/base/clusterrole.yaml and role.yaml, SPEC's footprint). */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
}

/** Cluster-wide (the ClusterRole): checked in every namespace, or in --namespace. */
export const PERMISSIONS: readonly Permission[] = [
  { verb: 'get', group: '', resource: 'pods' },
  { verb: 'list', group: '', resource: 'pods' },
  { verb: 'create', group: '', resource: 'pods', subresource: 'eviction' },
  { verb: 'get', group: 'apps', resource: 'deployments' },
  { verb: 'list', group: 'apps', resource: 'deployments' },
  { verb: 'watch', group: 'apps', resource: 'deployments' },
  { verb: 'get', group: 'autoscaling', resource: 'horizontalpodautoscalers' },
  { verb: 'list', group: 'autoscaling', resource: 'horizontalpodautoscalers' },
  { verb: 'watch', group: 'autoscaling', resource: 'horizontalpodautoscalers' },
  { verb: 'create', group: '', resource: 'events' },
];

/** With ACTION=delete only (deploy/components/delete-pods). */
export const DELETE_PERMISSION: Readonly<Permission> = {
  verb: 'delete',
  group: '',
  resource: 'pods',
};

/** In STATE_NAMESPACE only (the Role): the cooldown Leases and the action budget. */
export const STATE_PERMISSIONS: readonly Permission[] = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'delete',
].map((verb) => ({ verb, group: 'coordination.k8s.io', resource: 'leases' }));

/**
 * A grant the service must NOT hold: writing node heartbeats would let a stolen token keep dead
 * nodes looking alive (an install upgraded from a version whose ClusterRole granted Leases).
 */
export const FORBIDDEN: Readonly<Permission & { namespace: string }> = {
  verb: 'update',
  group: 'coordination.k8s.io',
  resource: 'leases',
  namespace: 'kube-node-lease',
};

/** The raw series the rule reads, with the selectors it uses and where they come from. */
export const REQUIRED_SERIES = [
  {
    selector: cpuSeriesSelector(),
    fix: "let Prometheus scrape cAdvisor (the kubelet's /metrics/cadvisor; kube-prometheus-stack does by default)",
  },
  {
    selector: 'kube_pod_owner{owner_kind="ReplicaSet"}',
    fix: 'install kube-state-metrics and let Prometheus scrape it',
  },
  {
    selector: 'kube_replicaset_owner{owner_kind="Deployment"}',
    fix: 'install kube-state-metrics and let Prometheus scrape it',
  },
] as const;

const RBAC_FIX =
  'grant it to the service account: deploy/base/clusterrole.yaml holds every rule (kubectl apply -k deploy/)';
const STATE_FIX =
  'grant it in STATE_NAMESPACE: deploy/base/role.yaml and rolebinding.yaml (kubectl apply -k deploy/)';
const DELETE_FIX =
  'ACTION=delete needs deploy/components/delete-pods (or use ACTION=evict, the default)';
const FORBIDDEN_FIX =
  'remove every Lease verb from the ClusterRole bound to the service (deploy/base/clusterrole.yaml of this version)';

/** One SelfSubjectAccessReview to make, and how to word its line. */
interface Review {
  permission: Permission;
  namespace: string | undefined;
  where: string;
  fix: string;
  /** The line passes when the answer is "denied" (a grant the service must not hold). */
  mustBeDenied?: boolean;
  /** Denied, the service still works this way: the line passes and says so. */
  withoutIt?: string;
}

/**
 * Without watch, the watch caches fall back to periodic paged lists (src/adapters/watch-cache.ts):
 * the service stays ready, and hears of changes a poll later instead of at once.
 */
const WITHOUT_WATCH = `the service lists every ${formatDuration(WATCH_TIMING.pollIntervalMs)} instead of watching (pod_rebalancer_watch_polling is 1); grant watch to hear of changes at once`;

/** The state namespace and action the configuration names (defaults when unset or invalid). */
function deploymentOf(env: NodeJS.ProcessEnv): { stateNamespace: string; action: string } {
  const read = <T>(parse: () => T, fallback: T): T => {
    try {
      return parse();
    } catch {
      return fallback;
    }
  };
  return {
    stateNamespace: read(
      () => SETTINGS.STATE_NAMESPACE.parse(env.STATE_NAMESPACE || 'pod-rebalancer'),
      'pod-rebalancer',
    ),
    action: read(() => SETTINGS.ACTION.parse(env.ACTION || 'evict'), 'evict'),
  };
}

/** Every review `check` makes: cluster-wide, ACTION=delete's, the state namespace's, the forbidden one. */
function reviews(env: NodeJS.ProcessEnv, namespace: string | undefined): Review[] {
  const { stateNamespace, action } = deploymentOf(env);
  const where = namespace ? `in namespace ${namespace}` : 'in all namespaces';
  const cluster = [...PERMISSIONS, ...(action === 'delete' ? [DELETE_PERMISSION] : [])];
  return [
    ...cluster.map((permission) => ({
      permission,
      namespace,
      where,
      fix: permission === DELETE_PERMISSION ? DELETE_FIX : RBAC_FIX,
      withoutIt: permission.verb === 'watch' ? WITHOUT_WATCH : undefined,
    })),
    ...STATE_PERMISSIONS.map((permission) => ({
      permission,
      namespace: stateNamespace,
      where: `in namespace ${stateNamespace} (STATE_NAMESPACE)`,
      fix: STATE_FIX,
      withoutIt: permission.verb === 'watch' ? WITHOUT_WATCH : undefined,
    })),
    {
      permission: FORBIDDEN,
      namespace: FORBIDDEN.namespace,
      where: `in namespace ${FORBIDDEN.namespace}`,
      fix: FORBIDDEN_FIX,
      mustBeDenied: true,
    },
  ];
}

function placeholderKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'unused', server: 'http://127.0.0.1:1' }],
    users: [{ name: 'unused' }],
    contexts: [{ name: 'unused', cluster: 'unused', user: 'unused' }],
    currentContext: 'unused',
  });
  return kubeConfig;
}

/** The configuration as the service would load it, token files included. */
function checkConfiguration(io: OperatorIo): CheckResult[] {
  try {
    const config = loadConfig(io.env);
    // Builds what the service builds at start, which reads the token files. No request is made:
    // the Kubernetes checks below use the real kubeconfig.
    realAdapters(config, io.env, placeholderKubeConfig());
    return [{ check: 'configuration', ok: true, detail: 'valid' }];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((problem) => ({
      check: 'configuration',
      ok: false,
      detail: problem,
      fix: 'fix the variable (docs/configuration.md)',
    }));
  }
}

/** The Prometheus client settings from the variables they need, even when others are invalid. */
function prometheusConnectionOf(env: NodeJS.ProcessEnv): PrometheusConnection {
  const config = {
    prometheusUrl: SETTINGS.PROMETHEUS_URL.parse(env.PROMETHEUS_URL ?? ''),
    prometheusTimeoutMs: SETTINGS.PROMETHEUS_TIMEOUT.parse(env.PROMETHEUS_TIMEOUT || '10s'),
    prometheusBearerTokenFile: env.PROMETHEUS_BEARER_TOKEN_FILE || undefined,
    prometheusBasicAuthUser: env.PROMETHEUS_BASIC_AUTH_USER || undefined,
    prometheusBasicAuthPasswordFile: env.PROMETHEUS_BASIC_AUTH_PASSWORD_FILE || undefined,
    prometheusCaFile: env.PROMETHEUS_CA_FILE || undefined,
    prometheusHeaders: env.PROMETHEUS_HEADERS
      ? SETTINGS.PROMETHEUS_HEADERS.parse(env.PROMETHEUS_HEADERS)
      : {},
  };
  readSecretFile(config.prometheusBearerTokenFile, 'PROMETHEUS_BEARER_TOKEN_FILE');
  readSecretFile(config.prometheusBasicAuthPasswordFile, 'PROMETHEUS_BASIC_AUTH_PASSWORD_FILE');
  readSecretFile(config.prometheusCaFile, 'PROMETHEUS_CA_FILE');
  return prometheusConnection(config);
}

/** Where Prometheus is, from the variables it needs, even when others are invalid. */
function prometheusOf(env: NodeJS.ProcessEnv): PrometheusHistory | string {
  try {
    return new PrometheusHistory(prometheusConnectionOf(env));
  } catch (error) {
    return error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message;
  }
}

async function seriesCheck(
  prometheus: PrometheusHistory,
  series: { selector: string; fix: string },
): Promise<CheckResult> {
  const name = series.selector.split('{')[0]!;
  const check = `prometheus series ${name}`;
  try {
    const [answer] = await prometheus.instant(`count(${series.selector})`);
    const count = answer?.value ?? 0;
    return count > 0
      ? { check, ok: true, detail: `${count} series` }
      : { check, ok: false, detail: `no series match ${series.selector}`, fix: series.fix };
  } catch (error) {
    return {
      check,
      ok: false,
      detail: (error as Error).message,
      fix: 'see the Prometheus check above',
    };
  }
}

/** The alert rules of ALERT_NAMES, loaded and healthy in Prometheus (`/api/v1/rules`). */
async function checkAlertRules(
  env: NodeJS.ProcessEnv,
  prometheus: PrometheusHistory,
): Promise<CheckResult[]> {
  let names: ReadonlySet<string>;
  try {
    names = SETTINGS.ALERT_NAMES.parse(env.ALERT_NAMES || SETTINGS.ALERT_NAMES.default!);
  } catch {
    return []; // The configuration line already says what is wrong with ALERT_NAMES.
  }
  try {
    return judgeAlertRules(names, await prometheus.alertRules());
  } catch (error) {
    return [
      {
        check: 'prometheus alert rules',
        ok: false,
        detail: `cannot list the loaded rules: ${(error as Error).message}`,
        fix: 'a Prometheus-compatible backend without /api/v1/rules (e.g. Thanos Query without rules): check the rule where it is evaluated',
      },
    ];
  }
}

/**
 * The series to look for: the CPU selector with CPU_SERIES_MATCHERS (a typo there would leave
 * every alert without samples), else as the rule reads them.
 */
function requiredSeries(env: NodeJS.ProcessEnv): { selector: string; fix: string }[] {
  let extraMatchers: readonly string[] = [];
  try {
    extraMatchers = env.CPU_SERIES_MATCHERS
      ? SETTINGS.CPU_SERIES_MATCHERS.parse(env.CPU_SERIES_MATCHERS)
      : [];
  } catch {
    // Reported by the configuration check.
  }
  const [cpu, ...rest] = REQUIRED_SERIES;
  return [{ ...cpu!, selector: cpuSeriesSelector({ extraMatchers }) }, ...rest];
}

/** Prometheus answers a query, and holds the series the rule needs. */
async function checkPrometheus(env: NodeJS.ProcessEnv): Promise<CheckResult[]> {
  const prometheus = prometheusOf(env);
  const url = redactCredentials(env.PROMETHEUS_URL ?? '(unset)');
  if (typeof prometheus === 'string') {
    return [
      {
        check: 'prometheus',
        ok: false,
        detail: `not checked: ${prometheus}`,
        fix: 'set PROMETHEUS_URL (and PROMETHEUS_BEARER_TOKEN_FILE if it needs a token)',
      },
    ];
  }
  try {
    await prometheus.instant('vector(1)');
  } catch (error) {
    return [
      {
        check: 'prometheus',
        ok: false,
        detail: `${url}: ${(error as Error).message}`,
        fix: 'check PROMETHEUS_URL, network policies (egress) and PROMETHEUS_BEARER_TOKEN_FILE',
      },
    ];
  }
  const series = await Promise.all(requiredSeries(env).map((s) => seriesCheck(prometheus, s)));
  return [
    { check: 'prometheus', ok: true, detail: `reachable at ${url}` },
    ...series,
    ...(await checkAlertRules(env, prometheus)),
    ...(await guardCheck(env)),
    ...(await provenanceCheck(env, prometheusConnectionOf(env), alertNamesOf(env))),
  ];
}

/** ALERT_NAMES as the service reads it (its default when unset or invalid). */
function alertNamesOf(env: NodeJS.ProcessEnv): string[] {
  try {
    return [...SETTINGS.ALERT_NAMES.parse(env.ALERT_NAMES || SETTINGS.ALERT_NAMES.default!)];
  } catch {
    return ['DeploymentCPUImbalance'];
  }
}

/**
 * GUARD_QUERY, evaluated once the way the service evaluates it: whether it holds now (then no
 * Deployment is acted on, which is not a fault), or whether Prometheus refuses it (a fault:
 * every alert would be `invalid-policy`). No line when it is not set.
 */
async function guardCheck(env: NodeJS.ProcessEnv): Promise<CheckResult[]> {
  const expr = env.GUARD_QUERY?.trim();
  if (!expr) return [];
  const check = 'guard GUARD_QUERY';
  try {
    const answer = await new PrometheusMetricsSource(prometheusConnectionOf(env)).guardSeries(expr);
    if ('rejected' in answer) {
      return [
        {
          check,
          ok: false,
          detail: `rejected by Prometheus: ${answer.rejected}`,
          fix: 'fix the PromQL in GUARD_QUERY (try it in the Prometheus UI); until then every alert is skipped as invalid-policy',
        },
      ];
    }
    const detail =
      answer.count > 0
        ? `holds now (guard returned ${answer.count} series): no Deployment is acted on while it does`
        : 'does not hold now (no series): actions are not held back';
    return [{ check, ok: true, detail }];
  } catch (error) {
    return [
      { check, ok: false, detail: (error as Error).message, fix: 'see the Prometheus check above' },
    ];
  }
}

function permissionText(permission: Permission): string {
  const resource = permission.subresource
    ? `${permission.resource}/${permission.subresource}`
    : permission.resource;
  return `${permission.verb} ${permission.group ? `${resource}.${permission.group}` : resource}`;
}

async function allowed(
  apis: KubeApis,
  permission: Permission,
  namespace: string | undefined,
): Promise<boolean> {
  const review = await apis.authorization.createSelfSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { ...permission, namespace } },
    },
  });
  return review.status?.allowed === true;
}

function reviewResult(review: Review, granted: boolean): CheckResult {
  const what = permissionText(review.permission);
  if (review.mustBeDenied) {
    const check = `kubernetes may not ${what}`;
    return granted
      ? { check, ok: false, detail: `granted ${review.where}`, fix: review.fix }
      : { check, ok: true, detail: review.where };
  }
  const check = `kubernetes may ${what}`;
  if (granted) return { check, ok: true, detail: review.where };
  if (review.withoutIt) {
    return { check, ok: true, detail: `denied ${review.where}: ${review.withoutIt}` };
  }
  return { check, ok: false, detail: `denied ${review.where}`, fix: review.fix };
}

/** Each permission through a SelfSubjectAccessReview; the first one also proves the API answers. */
async function checkKubernetes(
  io: OperatorIo,
  namespace: string | undefined,
  flags: ClusterFlags,
): Promise<CheckResult[]> {
  let kubeConfig: KubeConfig;
  let apis: KubeApis;
  try {
    kubeConfig = clusterKubeConfig(flags, io);
    apis = createKubeApis(kubeConfig, 5000);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems : [(error as Error).message];
    return problems.map((detail) => ({
      check: 'kubernetes',
      ok: false,
      detail,
      fix: 'set KUBECONFIG or --kubeconfig (and --context), or run in a pod with a service account',
    }));
  }
  const results: CheckResult[] = [];
  for (const review of reviews(io.env, namespace)) {
    let granted: boolean;
    try {
      granted = await allowed(apis, review.permission, review.namespace);
    } catch (error) {
      const failure = toUpstreamError(error, 'SelfSubjectAccessReview');
      return [
        {
          check: 'kubernetes',
          ok: false,
          detail: `${describeCluster(kubeConfig)}: ${failure.message}`,
          fix: 'check KUBECONFIG (or the in-cluster service account) and network policies',
        },
      ];
    }
    results.push(reviewResult(review, granted));
  }
  return [
    {
      check: 'kubernetes',
      ok: true,
      detail: `API server reachable: ${describeCluster(kubeConfig)}`,
    },
    ...results,
  ];
}

/** Every check, in order: configuration, Prometheus, Kubernetes. */
export async function runChecks(
  io: OperatorIo,
  namespace?: string,
  flags: ClusterFlags = {},
): Promise<CheckResult[]> {
  const [prometheus, kubernetes] = await Promise.all([
    checkPrometheus(io.env),
    checkKubernetes(io, namespace, flags),
  ]);
  return [...checkConfiguration(io), ...prometheus, ...kubernetes];
}

/** One line per check: `ok` or `FAIL`, what, and for a failure what to do. */
export function formatChecks(results: readonly CheckResult[]): string {
  const lines = results.map(
    (r) => `${r.ok ? 'ok  ' : 'FAIL'}  ${r.check}: ${r.detail}${r.fix ? ` -> ${r.fix}` : ''}`,
  );
  const failed = results.filter((r) => !r.ok).length;
  lines.push(
    failed === 0
      ? `all ${results.length} checks passed`
      : `${failed} of ${results.length} checks failed`,
  );
  return `${lines.join('\n')}\n`;
}

/** `pod-rebalancer check`: exit 0 when every check passes, 1 otherwise, 2 on bad flags. */
export async function checkCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const { values, positionals } = parseFlags(argv, {
    namespace: { type: 'string' },
    json: { type: 'boolean', default: false },
    alertmanager: { type: 'string' },
    ...CLUSTER_FLAGS,
  });
  rejectPositionals(positionals, 'check');
  const results = values.alertmanager
    ? await checkAlertmanagerRouting(
        values.alertmanager,
        SETTINGS.ALERT_NAMES.parse(io.env.ALERT_NAMES || SETTINGS.ALERT_NAMES.default!),
        values.namespace ?? 'default',
      )
    : await runChecks(io, values.namespace, values);
  const ok = results.every((r) => r.ok);
  io.stdout.write(
    values.json ? `${JSON.stringify({ ok, checks: results }, null, 2)}\n` : formatChecks(results),
  );
  return ok ? EXIT.done : EXIT.failure;
}
