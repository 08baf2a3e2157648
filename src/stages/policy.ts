import type { Logger } from '../adapters/logger.js';
import {
  policyAnnotations,
  policyFromAnnotations,
  type PolicyDefaults,
  type PolicyResult,
} from '../core/policy.js';
import type { TargetAlert } from '../core/targets.js';
import type { Metrics } from '../metrics.js';

/**
 * The policy this alert's rule carries, with the configuration filling in what it leaves out.
 * A rule whose policy does not parse is counted by alertname and logged with the values it
 * wrote, so a broken rule is visible before anyone wonders why nothing happens.
 */
export function alertPolicy(
  target: TargetAlert,
  defaults: PolicyDefaults,
  deps: { telemetry: Metrics; logger: Logger },
): PolicyResult {
  const result = policyFromAnnotations(target.annotations, defaults);
  if (!result.ok) {
    deps.telemetry.invalidPolicy.inc({ alertname: target.alertname });
    deps.logger.warn('the alert rule carries an invalid policy', {
      alertname: target.alertname,
      annotations: policyAnnotations(target.annotations),
      problem: result.detail,
    });
  }
  return result;
}
