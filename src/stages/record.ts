import type { Logger } from '../adapters/logger.js';
import type { Metrics } from '../metrics.js';
import type { AlertReport, TargetReport } from '../report.js';

/**
 * Records a decision, acted on or not: one log line (info; the reason says why) and the
 * alerts metric. The stddev gauge follows every fresh verification.
 */
export function recordDecision(
  report: TargetReport,
  deps: { logger: Logger; telemetry: Metrics },
): void {
  deps.telemetry.alerts.inc({ outcome: report.outcome, reason: report.reason });
  if (report.stats && Number.isFinite(report.stats.stddev)) {
    deps.telemetry.deploymentStddev.set(
      { namespace: report.namespace, deployment: report.deployment },
      report.stats.stddev,
    );
  }
  const level = report.outcome === 'failed' ? 'warn' : 'info';
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
