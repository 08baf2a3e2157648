import type { PrometheusConnection } from '../adapters/prometheus.js';
import { PrometheusRuleSource } from '../adapters/rules.js';
import { redactCredentials } from '../errors.js';
import type { CheckResult } from './check-result.js';

const CHECK = 'alert provenance';

/**
 * Which ALERT_PROVENANCE mode is on and, with `rules`, whether the rule engine at RULES_URL
 * answers `/api/v1/rules` through the service's own client (credentials, CA, headers, cap).
 * A rule engine that cannot be asked means every alert fails: that is a FAIL.
 */
export async function provenanceCheck(
  env: NodeJS.ProcessEnv,
  connection: PrometheusConnection,
  alertNames: readonly string[],
): Promise<CheckResult[]> {
  if ((env.ALERT_PROVENANCE || 'rules') === 'off') {
    return [
      {
        check: CHECK,
        ok: true,
        detail:
          "off: every alert that carries the webhook token is trusted (ALERT_PROVENANCE=off); lock down Alertmanager's API (SECURITY.md)",
      },
    ];
  }
  const url = (env.RULES_URL || connection.url).replace(/\/+$/, '');
  const shown = redactCredentials(url);
  try {
    const active = await new PrometheusRuleSource({ ...connection, url }).activeAlerts(alertNames);
    const count = [...active.values()].reduce((n, alerts) => n + alerts.length, 0);
    return [
      {
        check: CHECK,
        ok: true,
        detail: `rules: alerts are confirmed by the rule engine at ${shown} (answers /api/v1/rules; ${count} active alert(s) of ${alertNames.join(', ')} now)`,
      },
    ];
  } catch (error) {
    return [
      {
        check: CHECK,
        ok: false,
        detail: `rules: the rule engine at ${shown} does not answer: ${(error as Error).message}`,
        fix: "set RULES_URL to a rule engine serving /api/v1/rules (Prometheus, Thanos Querier, Mimir's /prometheus, vmalert), or ALERT_PROVENANCE=off where none exists",
      },
    ];
  }
}
