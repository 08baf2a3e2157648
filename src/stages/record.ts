import type { Logger } from '../adapters/logger.js';
import { targetKey } from '../core/targets.js';
import type { Metrics } from '../metrics.js';
import type { AlertReport, TargetReport } from '../report.js';

/** Deployments whose cooldown skip is remembered; past this the memory starts afresh. */
const REMEMBERED_DEPLOYMENTS = 10_000;

/** Chooses the level each decision is logged at. */
export interface DecisionLevels {
  levelOf(report: TargetReport): 'warn' | 'info' | 'debug';
}

/**
 * Alertmanager repeats a firing alert (every repeat_interval, and on every retry) for as long as
 * its Deployment sits in its cooldown: in a storm that is thousands of lines saying the same
 * thing. The first cooldown skip of each cooldown is said at info; its word-for-word repeats
 * (the detail names the cooldown's end, so a new cooldown is said again) go to debug, until
 * anything else is decided for that Deployment. Actions, failures and every other skip keep
 * their line; the metrics count every decision. Each replica remembers its own.
 */
export function quietCooldownRepeats(): DecisionLevels {
  const said = new Map<string, string>();
  return {
    levelOf(report) {
      const key = targetKey(report);
      if (report.reason !== 'cooldown') {
        said.delete(key);
        return report.outcome === 'failed' ? 'warn' : 'info';
      }
      if (said.get(key) === report.detail) return 'debug';
      // Forgetting costs at most one more info line per Deployment: memory stays bounded.
      if (said.size >= REMEMBERED_DEPLOYMENTS) said.clear();
      said.set(key, report.detail);
      return 'info';
    },
  };
}

/**
 * Records a decision, acted on or not: one log line (the reason says why; see `levels` for
 * which) and the alerts metric. The stddev gauge follows every fresh verification.
 */
export function recordDecision(
  report: TargetReport,
  deps: { logger: Logger; telemetry: Metrics },
  levels: DecisionLevels,
): void {
  deps.telemetry.alerts.inc({ outcome: report.outcome, reason: report.reason });
  if (report.stats && Number.isFinite(report.stats.stddev)) {
    deps.telemetry.deploymentStddev.set(
      { namespace: report.namespace, deployment: report.deployment },
      report.stats.stddev,
    );
  }
  const level = levels.levelOf(report);
  // A line nobody reads costs nothing: winston would build and format it before dropping it.
  if (!deps.logger.isLevelEnabled(level)) return;
  deps.logger.log(level, 'decision', {
    outcome: report.outcome,
    reason: report.reason,
    detail: report.detail,
    stats: report.stats,
    pods: report.pods,
  });
}

/** Records an alert acknowledged before any Deployment was looked at (resolved, unknown...). */
export function recordDismissal(
  report: AlertReport,
  deps: { logger: Logger; telemetry: Metrics },
): void {
  deps.telemetry.alerts.inc({ outcome: report.outcome, reason: report.reason });
  deps.logger.info('decision', {
    fingerprint: report.fingerprint,
    alertname: report.alertname,
    namespace: report.namespace,
    deployment: report.deployment,
    outcome: report.outcome,
    reason: report.reason,
    detail: report.detail,
  });
}
