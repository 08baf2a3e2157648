import { collectDefaultMetrics, Registry } from 'prom-client';
import { BatchingMetricsSource, type BatchingOptions } from './adapters/batching-metrics.js';
import type { Logger } from './adapters/logger.js';
import type { WatchMode } from './adapters/watch-cache.js';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import type { WebhookLimits } from './http/limits.js';
import type { TokenSource } from './http/tokens.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createPipeline, type Pipeline, type PipelineSettings } from './pipeline.js';
import { InMemoryActionBudgetStore } from './adapters/memory.js';
import { UpstreamError } from './errors.js';
import { RotationDriver } from './stages/rotation.js';
import { showBudgetLeft } from './stages/budget.js';
import type {
  ActionBudgetStore,
  AutoscalerSource,
  Clock,
  Cluster,
  CooldownStore,
  GuardSource,
  MetricsSource,
  RuleSource,
} from './ports.js';

/** The world as the service sees it: real adapters in main.ts, simulated ones in the demo. */
export interface Adapters {
  cluster: Cluster;
  metrics: MetricsSource;
  guards: GuardSource;
  /**
   * The rule engine that confirms alerts (ALERT_PROVENANCE=rules). Absent (an in-memory world
   * without one): every alert fails as `prometheus-error` unless ALERT_PROVENANCE=off.
   */
  rules?: RuleSource;
  cooldown: CooldownStore;
  /** The cluster-wide action budget; one process's own (in memory) when absent. */
  actionBudget?: ActionBudgetStore;
  /** HorizontalPodAutoscalers (a watch cache in a cluster); none when absent. */
  autoscalers?: AutoscalerSource;
  clock: Clock;
  logger: Logger;
  tokens: TokenSource;
  identity: string;
  /** Watch caches, when the adapters read through them: not ready until they have synced. */
  caches?: WatchCaches;
}

/** The watch caches behind the adapters, started and stopped by whoever serves. */
export interface WatchCaches {
  start(): void;
  isSynced(): boolean;
  /** Each cache's mode: `polling` while its watch is refused or failing (periodic lists). */
  modes?(): Record<string, WatchMode>;
  stop(): Promise<void>;
}

export interface Service {
  app: ReturnType<typeof createApp>;
  pipeline: Pipeline;
  registry: Registry;
  telemetry: Metrics;
  /** Marks the service not ready (on SIGTERM) so no new traffic is routed to it. */
  stopReadiness(): void;
  /** Finishes one-by-one rotations (step 2); whoever serves starts and stops it. */
  rotations: RotationDriver;
}

const MISNAMED_DEFAULT_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** The pipeline's settings, picked out of the configuration. */
export function pipelineSettings(config: Readonly<Config>): PipelineSettings {
  return {
    alertNames: config.alertNames,
    policy: {
      threshold: config.threshold,
      minPods: config.minPods,
      minPodAgeMs: config.minPodAgeMs,
      minSampleCoverage: config.minSampleCoverage,
      minImprovement: config.minImprovement,
    },
    scope: {
      namespaces: config.namespaces,
      excludeNamespaces: config.excludeNamespaces,
      requireOptIn: config.requireOptIn,
      stateNamespace: config.stateNamespace,
    },
    actionBudget: config.actionBudget,
    cluster: { name: config.cluster, label: config.clusterLabel },
    metricsWindowMs: config.metricsWindowMs,
    action: config.action,
    dryRun: config.dryRun,
    activeWindow: config.activeWindow,
    guardQuery: config.guardQuery,
    provenance: config.alertProvenance,
    policyLimits: config.policyLimits,
    rotation: { mode: config.rotation, timeoutMs: config.rotationTimeoutMs },
    effect: {
      baseCooldownMs: config.cooldownMs,
      maxCooldownMs: config.maxCooldownMs,
      effectiveReduction: config.effectiveReduction,
      ineffectiveLimit: config.ineffectiveLimit,
    },
  };
}

/**
 * Merging CPU queries across payloads: only calls made in the same tick share a query, none is
 * delayed. Within one payload the pipeline already verifies a namespace's Deployments together.
 */
export const METRICS_BATCHING: Readonly<BatchingOptions> = Object.freeze({ lingerMs: 0 });

/** Where no rule engine was wired: nothing can be confirmed, and a retry will not change it. */
const NO_RULE_ENGINE: RuleSource = {
  activeAlerts: () =>
    Promise.reject(
      new UpstreamError(
        'prometheus',
        'config',
        false,
        'no rule engine is wired into this service to confirm alerts (ALERT_PROVENANCE=rules)',
      ),
    ),
};

/** Knobs that are not configuration: tests and the benchmark turn them. */
export interface ServiceOptions {
  /** Merge CPU queries per namespace into one: false turns it off (default METRICS_BATCHING). */
  batchMetrics?: boolean | BatchingOptions;
  /** Webhook limits; defaults in http/limits.ts. */
  limits?: Partial<WebhookLimits>;
  /** How often rotations between their steps are looked at (default ROTATION_CHECK_MS). */
  rotationCheckMs?: number;
}

/**
 * The webhook deadline (WEBHOOK_DEADLINE) and the part of it kept for the irreversible steps:
 * 2 s (a Lease write, two evictions and an Event take milliseconds on a healthy API server), or
 * a quarter of a shorter deadline.
 */
export function deadlineLimits(
  deadlineMs: number,
): Pick<WebhookLimits, 'deadlineMs' | 'actReserveMs'> {
  return { deadlineMs, actReserveMs: Math.min(2000, Math.floor(deadlineMs / 4)) };
}

/** A registry of its own: prom-client's process metrics (less the misnamed ones) and ours. */
function createTelemetry(adapters: Adapters): { registry: Registry; telemetry: Metrics } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // These default gauges end in _total, which `promtool check metrics` rejects for non-counters.
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  const telemetry = createMetrics(registry);
  // Whether each watch cache watches or polls, read at each scrape.
  const modes = adapters.caches?.modes;
  if (modes) telemetry.watchModes.read = modes;
  return { registry, telemetry };
}

/** Wires configuration and adapters into the pipeline and the HTTP app, with its own registry. */
export function createService(
  config: Readonly<Config>,
  adapters: Adapters,
  options: ServiceOptions = {},
): Service {
  const { registry, telemetry } = createTelemetry(adapters);
  // Many Deployments of one namespace in one payload then cost one Prometheus query, not many.
  const batching = options.batchMetrics ?? true;
  const metrics =
    batching === false
      ? adapters.metrics
      : new BatchingMetricsSource(
          adapters.metrics,
          batching === true ? METRICS_BATCHING : batching,
        );
  const settings = pipelineSettings(config);
  const actionBudget = adapters.actionBudget ?? new InMemoryActionBudgetStore();
  showBudgetLeft(config.actionBudget, { ...adapters, actionBudget, telemetry });
  const pipeline = createPipeline({
    ...adapters,
    actionBudget,
    metrics,
    rules: adapters.rules ?? NO_RULE_ENGINE,
    settings,
    telemetry,
  });
  const rotations = new RotationDriver(
    { ...adapters, settings, telemetry },
    options.rotationCheckMs,
  );
  let ready = true;
  const app = createApp({
    pipeline,
    tokens: adapters.tokens,
    telemetry,
    registry,
    logger: adapters.logger,
    ready: () => ready && (adapters.caches?.isSynced() ?? true),
    limits: { ...deadlineLimits(config.webhookDeadlineMs), ...options.limits },
  });
  return { app, pipeline, registry, telemetry, rotations, stopReadiness: () => (ready = false) };
}
