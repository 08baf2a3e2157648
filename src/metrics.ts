import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { GuardKind } from './core/guard.js';
import { ROTATION_ENDS } from './core/rotation.js';
import { FAILURE_REASONS, SKIP_REASONS } from './core/types.js';
import { UpstreamError } from './errors.js';
import { currentBuild, type BuildInfo } from './version.js';

const GUARD_KINDS: readonly GuardKind[] = ['global', 'rule'];

/**
 * The service's own metrics, registered on the registry it is given (never the global one,
 * so that each app instance in a test has its own). Labels stay low-cardinality: pod names
 * and fingerprints go to the logs.
 */
export function createMetrics(registry: Registry, build: BuildInfo = currentBuild()) {
  const metrics = defineMetrics(registry);
  // The usual build_info idiom: always 1, the facts are in the labels (join on it in queries).
  metrics.buildInfo.set({ version: build.version, node_version: build.nodeVersion }, 1);
  // Start every known outcome/reason at 0, so that increase() sees the first one too.
  for (const reason of SKIP_REASONS) metrics.alerts.inc({ outcome: 'skipped', reason }, 0);
  for (const reason of FAILURE_REASONS) metrics.alerts.inc({ outcome: 'failed', reason }, 0);
  for (const outcome of ['rebalanced', 'dry-run'])
    metrics.alerts.inc({ outcome, reason: 'imbalanced' }, 0);
  for (const effect of ['effective', 'ineffective']) metrics.actionsJudged.inc({ effect }, 0);
  for (const guard of GUARD_KINDS) metrics.guarded.inc({ guard }, 0);
  for (const result of ROTATION_ENDS) metrics.rotations.inc({ result }, 0);
  return metrics;
}

function defineMetrics(registry: Registry) {
  const registers = [registry];
  const budgetScrape: { refresh?: () => void } = {};
  // Read at each scrape: the service points it at its watch caches (none in the demo, replay).
  const watchModes = { read: (): Readonly<Record<string, string>> => ({}) };
  return {
    /** Runs `refresh` at each scrape of the budget gauge (without waiting for it). */
    onBudgetScrape(refresh: () => void): void {
      budgetScrape.refresh = refresh;
    },
    watchModes,
    buildInfo: new Gauge({
      name: 'pod_rebalancer_build_info',
      help: 'Always 1; the version of pod-rebalancer and of Node.js it runs on, as labels.',
      labelNames: ['version', 'node_version'] as const,
      registers,
    }),
    webhookRequests: new Counter({
      name: 'pod_rebalancer_webhook_requests_total',
      help: 'Webhook requests, by HTTP status code of the answer.',
      labelNames: ['code'] as const,
      registers,
    }),
    alerts: new Counter({
      name: 'pod_rebalancer_alerts_total',
      help: 'Alerts handled, by outcome and reason.',
      labelNames: ['outcome', 'reason'] as const,
      registers,
    }),
    podsRemoved: new Counter({
      name: 'pod_rebalancer_pods_removed_total',
      help: 'Pods evicted or deleted, by Deployment and action.',
      labelNames: ['namespace', 'deployment', 'action'] as const,
      registers,
    }),
    deploymentStddev: new Gauge({
      name: 'pod_rebalancer_deployment_cpu_stddev_cores',
      help: 'Standard deviation of per-pod CPU (cores) at the last verification of a Deployment.',
      labelNames: ['namespace', 'deployment'] as const,
      registers,
    }),
    verificationDuration: new Histogram({
      name: 'pod_rebalancer_verification_duration_seconds',
      help: 'Time to list the pods and query their CPU for one Deployment.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    handlingDuration: new Histogram({
      name: 'pod_rebalancer_handling_duration_seconds',
      help: 'Time to handle one Deployment named by an alert, from targets to record.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    actionEffectRatio: new Histogram({
      name: 'pod_rebalancer_action_effect_ratio',
      help: 'CPU stddev when an action was judged, divided by the stddev before it (below 1: it helped).',
      buckets: [0.1, 0.25, 0.5, 0.7, 0.85, 1, 1.25, 1.5, 2],
      registers,
    }),
    actionsJudged: new Counter({
      name: 'pod_rebalancer_actions_judged_total',
      help: 'Past actions judged when the Deployment was looked at again, by effect.',
      labelNames: ['effect'] as const,
      registers,
    }),
    cooldown: new Gauge({
      name: 'pod_rebalancer_deployment_cooldown_seconds',
      help: 'The cooldown in force after the last action on a Deployment (doubles after ineffective ones).',
      labelNames: ['namespace', 'deployment'] as const,
      registers,
    }),
    leasesSwept: new Counter({
      name: 'pod_rebalancer_leases_swept_total',
      help: 'Cooldown Leases of Deployments that are gone or were recreated: deleted, would-delete (DRY_RUN), or changed meanwhile (kept).',
      labelNames: ['reason', 'result'] as const,
      registers,
    }),
    invalidPolicy: new Counter({
      name: 'pod_rebalancer_invalid_policy_total',
      help: 'Alerts skipped because the policy their rule carries in its annotations does not parse, by alertname.',
      labelNames: ['alertname'] as const,
      registers,
    }),
    actionBudgetRemaining: new Gauge({
      name: 'pod_rebalancer_action_budget_remaining',
      help: 'Actions left in the cluster-wide ACTION_BUDGET window, as last seen by this replica.',
      registers,
      collect() {
        budgetScrape.refresh?.();
      },
    }),
    guarded: new Counter({
      name: 'pod_rebalancer_guarded_total',
      help: 'Actions held back because a guard returned series, by guard (global: GUARD_QUERY, rule: the alert annotation pod_rebalancer_guard).',
      labelNames: ['guard'] as const,
      registers,
    }),
    rotations: new Counter({
      name: 'pod_rebalancer_rotations_total',
      help: 'One-by-one rotations ended, by result (done: both pods removed; stalled: the replacement was not Ready within ROTATION_TIMEOUT).',
      labelNames: ['result'] as const,
      registers,
    }),
    watchPolling: new Gauge({
      name: 'pod_rebalancer_watch_polling',
      help: '1 while a watch cache lists periodically instead of watching (its watch is forbidden or keeps failing), by cache.',
      labelNames: ['cache'] as const,
      registers,
      collect() {
        for (const [cache, mode] of Object.entries(watchModes.read())) {
          this.set({ cache }, mode === 'polling' ? 1 : 0);
        }
      },
    }),
    upstreamErrors: new Counter({
      name: 'pod_rebalancer_upstream_errors_total',
      help: 'Failed calls to Prometheus or the Kubernetes API, by kind.',
      labelNames: ['upstream', 'kind'] as const,
      registers,
    }),
    unconfirmedAlerts: new Counter({
      name: 'pod_rebalancer_unconfirmed_alerts_total',
      help: 'Alerts skipped because the rule engine does not have them active as they came (ALERT_PROVENANCE=rules), by alertname.',
      labelNames: ['alertname'] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof defineMetrics>;

/** Counts a failed upstream call in `pod_rebalancer_upstream_errors_total`; other errors are not. */
export function countUpstreamError(telemetry: Metrics, error: unknown): void {
  if (error instanceof UpstreamError)
    telemetry.upstreamErrors.inc({ upstream: error.upstream, kind: error.kind });
}
