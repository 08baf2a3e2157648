import type { Logger } from './adapters/logger.js';
import { gateCooldown, gateWindow } from './core/cooldown.js';
import { decide, gateDeployment, type GateResult } from './core/decide.js';
import { targetKey, targetsFromAlerts, type Alert, type TargetAlert } from './core/targets.js';
import type { ChosenPod, DeploymentFacts, Policy, Stats } from './core/types.js';
import type { ActiveWindow } from './core/window.js';
import { UpstreamError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { Clock, Cluster, CooldownStore, MetricsSource } from './ports.js';
import type { AlertReport, PodReport, Report, TargetReport } from './report.js';
import { anyRemoved, removePods } from './stages/act.js';
import { recordDecision, recordDismissal } from './stages/record.js';
import { verify } from './stages/verify.js';

/** The part of the configuration the pipeline reads. */
export interface PipelineSettings {
  alertNames: ReadonlySet<string>;
  policy: Policy;
  cooldownMs: number;
  metricsWindowMs: number;
  action: 'evict' | 'delete';
  dryRun: boolean;
  activeWindow: ActiveWindow | undefined;
}

/** Everything the pipeline touches, passed in once (main.ts, the demo and the tests build it). */
export interface PipelineDeps {
  settings: PipelineSettings;
  cluster: Cluster;
  metrics: MetricsSource;
  cooldown: CooldownStore;
  clock: Clock;
  telemetry: Metrics;
  logger: Logger;
  /** This replica's name, written into the Lease it takes. */
  identity: string;
}

/** What one request brings besides its alerts. */
export interface RequestContext {
  requestId: string;
  groupKey?: string;
  /** Overrides DRY_RUN for this request only (replay without --execute). */
  dryRun?: boolean;
}

export interface Pipeline {
  handleAlerts(alerts: readonly Alert[], context: RequestContext): Promise<Report>;
}

/** Deployments handled at once within one payload. */
const TARGET_CONCURRENCY = 8;

/**
 * Builds the pipeline: targets → (one at a time per Deployment) gates → cooldown → verify →
 * decide → take the Lease → act → record. The stages live in their own modules; this file
 * only puts them in order.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const serialize = keyedSerializer();
  return {
    async handleAlerts(alerts, context) {
      const { targets, duplicates, dismissed } = targetsFromAlerts(
        alerts,
        deps.settings.alertNames,
      );
      const dismissals = dismissed.map((alert) => {
        const report: AlertReport = { ...alert, outcome: 'skipped' };
        recordDismissal(report, withLog(deps, context, alert));
        return report;
      });
      const handled = await mapWithLimit(targets, TARGET_CONCURRENCY, (target) =>
        serialize(targetKey(target), () =>
          handleTarget(target, context, withLog(deps, context, target)),
        ),
      );
      const byKey = new Map(targets.map((t, i) => [targetKey(t), handled[i]!]));
      const reportOf = (t: TargetAlert): AlertReport => ({
        fingerprint: t.fingerprint,
        alertname: t.alertname,
        ...byKey.get(targetKey(t))!,
      });
      return {
        requestId: context.requestId,
        results: [...targets.map(reportOf), ...duplicates.map(reportOf), ...dismissals],
      };
    },
  };
}

function withLog(
  deps: PipelineDeps,
  context: RequestContext,
  alert: { fingerprint: string; namespace?: string; deployment?: string },
): PipelineDeps {
  const logger = deps.logger.child({
    requestId: context.requestId,
    groupKey: context.groupKey,
    fingerprint: alert.fingerprint,
    namespace: alert.namespace,
    deployment: alert.deployment,
  });
  return { ...deps, logger };
}

async function handleTarget(
  target: TargetAlert,
  context: RequestContext,
  deps: PipelineDeps,
): Promise<TargetReport> {
  const stopTimer = deps.telemetry.handlingDuration.startTimer();
  let report: TargetReport;
  try {
    report = await runStages(target, context, deps);
  } catch (error) {
    report = failure(target, error, deps);
  }
  stopTimer();
  recordDecision(report, deps);
  return report;
}

async function runStages(
  target: TargetAlert,
  context: RequestContext,
  deps: PipelineDeps,
): Promise<TargetReport> {
  const { settings } = deps;
  const now = deps.clock.now();
  const deployment = await deps.cluster.getDeployment(target);
  const early = gateDeployment(deployment) ?? gateWindow(settings.activeWindow, now);
  if (early || !deployment) return skipped(target, early!);

  const cooldown = await deps.cooldown.read(deployment);
  const cooling = gateCooldown(cooldown, now);
  if (cooling) return skipped(target, cooling);

  const stopTimer = deps.telemetry.verificationDuration.startTimer();
  const { pods, samples } = await verify(deployment, deps, settings.metricsWindowMs);
  stopTimer();
  const decision = decide(pods, samples, settings.policy, now);
  if (!decision.act) return skipped(target, decision, decision.stats);

  const dryRun = context.dryRun ?? settings.dryRun;
  // The Lease is taken before acting: a retry, a duplicate or another replica that reached
  // this point too finds it taken (409) and stops, so one decision removes at most two pods.
  const taken = await deps.cooldown.start(deployment, cooldown, {
    holder: deps.identity,
    startedAt: now,
    durationMs: settings.cooldownMs,
    action: {
      stddev: decision.stats.stddev,
      mean: decision.stats.mean,
      pods: decision.pods.map((p) => p.name),
      dryRun,
    },
  });
  if (!taken) {
    return skipped(
      target,
      { reason: 'cooldown', detail: 'another request or replica took the Lease first' },
      decision.stats,
    );
  }
  const removed = await removePods(
    deployment,
    decision,
    { action: settings.action, dryRun, now },
    deps,
  );
  return acted(deployment, decision, removed, dryRun);
}

function skipped(target: TargetAlert, gate: NonNullable<GateResult>, stats?: Stats): TargetReport {
  return {
    namespace: target.namespace,
    deployment: target.deployment,
    outcome: 'skipped',
    ...gate,
    stats,
  };
}

function acted(
  deployment: DeploymentFacts,
  decision: { stats: Stats; pods: ChosenPod[] },
  pods: PodReport[],
  dryRun: boolean,
): TargetReport {
  const base = {
    namespace: deployment.namespace,
    deployment: deployment.name,
    stats: decision.stats,
    pods,
  };
  const why = `CPU stddev ${decision.stats.stddev.toFixed(3)} cores is above the threshold`;
  if (dryRun)
    return {
      ...base,
      outcome: 'dry-run',
      reason: 'imbalanced',
      detail: `${why}; dry run, nothing removed`,
    };
  if (anyRemoved(pods))
    return { ...base, outcome: 'rebalanced', reason: 'imbalanced', detail: why };
  if (pods.some((p) => p.result === 'pdb-blocked')) {
    return {
      ...base,
      outcome: 'skipped',
      reason: 'pdb-blocked',
      detail: 'a PodDisruptionBudget refused the eviction',
    };
  }
  if (pods.some((p) => p.result === 'failed')) {
    return {
      ...base,
      outcome: 'failed',
      reason: 'removal-failed',
      detail: 'the API server failed the removal',
    };
  }
  return {
    ...base,
    outcome: 'skipped',
    reason: 'not-found',
    detail: 'the chosen pods were already gone',
  };
}

function failure(target: TargetAlert, error: unknown, deps: PipelineDeps): TargetReport {
  const base = {
    namespace: target.namespace,
    deployment: target.deployment,
    outcome: 'failed' as const,
  };
  if (!(error instanceof UpstreamError)) {
    deps.logger.error('unexpected error', {
      error: error instanceof Error ? error.stack : String(error),
    });
    return { ...base, reason: 'internal-error', detail: 'unexpected error, see the logs' };
  }
  deps.telemetry.upstreamErrors.inc({ upstream: error.upstream, kind: error.kind });
  const reason = `${error.upstream}-${error.retryable ? 'unavailable' : 'error'}` as const;
  return { ...base, reason, detail: error.message, retryable: error.retryable || undefined };
}

/**
 * Runs `task` for each key strictly one after another, so that two requests for the same
 * Deployment never interleave in this process (the Lease covers other processes).
 */
function keyedSerializer() {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}

async function mapWithLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
