import type { Logger } from '../adapters/logger.js';
import {
  policyAnnotations,
  policyFromAnnotations,
  type PolicyDefaults,
  type PolicyResult,
} from '../core/policy.js';
import { guardsFor } from '../core/guard.js';
import { gatePolicyLimits, type PolicyLimit } from '../core/policy-limits.js';
import type { TargetAlert } from '../core/targets.js';
import type { Metrics } from '../metrics.js';

/**
 * A blank guard annotation (a template that rendered nothing) breaks the rule like a bad
 * threshold does: it is found here, with the rest of the policy, before any call or query.
 */
function withGuardAnnotation(
  annotations: Readonly<Record<string, string>>,
  parsed: PolicyResult,
): PolicyResult {
  if (!parsed.ok) return parsed;
  const guards = guardsFor(undefined, annotations);
  return Array.isArray(guards) ? parsed : { ok: false, ...guards };
}

/** A policy that parses but asks for more than POLICY_LIMITS allows is invalid too. */
function withinLimits(parsed: PolicyResult, limits: readonly PolicyLimit[]): PolicyResult {
  if (!parsed.ok) return parsed;
  const crossed = gatePolicyLimits(parsed.policy, limits);
  return crossed ? { ok: false, ...crossed } : parsed;
}

/**
 * The policy this alert's rule carries, with the configuration filling in what it leaves out.
 * A rule whose policy does not parse, or crosses POLICY_LIMITS, is counted by alertname and
 * logged with the values it wrote, so a broken rule is visible before anyone wonders why
 * nothing happens.
 */
export function alertPolicy(
  target: TargetAlert,
  defaults: PolicyDefaults,
  deps: { telemetry: Metrics; logger: Logger },
  limits: readonly PolicyLimit[] = [],
): PolicyResult {
  const result = withinLimits(
    withGuardAnnotation(target.annotations, policyFromAnnotations(target.annotations, defaults)),
    limits,
  );
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
