import type { PrometheusDriver } from 'prometheus-query';
import type { ActiveAlerts, RuleAlert } from '../core/provenance.js';
import type { RuleSource } from '../ports.js';
import { UpstreamError } from '../errors.js';
import {
  createPrometheusDriver,
  toPrometheusError,
  type PrometheusConnection,
} from './prometheus.js';

/** The states in which a rule's alert is active: pending (inside `for`) or firing. */
const ACTIVE_STATES = new Set(['pending', 'firing']);

interface RawAlert {
  labels?: unknown;
  annotations?: unknown;
  state?: unknown;
}

interface RawRule {
  type?: unknown;
  name?: unknown;
  alerts?: unknown;
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  return entries.every(([, v]) => typeof v === 'string')
    ? (Object.fromEntries(entries) as Record<string, string>)
    : undefined;
}

function activeAlertsOf(rule: RawRule): RuleAlert[] {
  const alerts = Array.isArray(rule.alerts) ? (rule.alerts as RawAlert[]) : [];
  return alerts.flatMap((alert) => {
    const labels = stringRecord(alert.labels);
    const annotations = stringRecord(alert.annotations ?? {});
    const active = typeof alert.state === 'string' && ACTIVE_STATES.has(alert.state);
    return active && labels && annotations ? [{ labels, annotations }] : [];
  });
}

/**
 * Checks the rules answer at the boundary (`data.groups[].rules[]`, the shape Prometheus, Thanos,
 * Mimir and vmalert share): the active alerts of the alerting rules named `alertnames`. An alert
 * whose labels or annotations are not strings is left out, never guessed: it confirms nothing.
 */
export function toActiveAlerts(groups: unknown, alertnames: readonly string[]): ActiveAlerts {
  if (!Array.isArray(groups)) {
    throw new UpstreamError(
      'prometheus',
      'bad-response',
      false,
      'the rule engine answered /api/v1/rules without data.groups',
    );
  }
  const wanted = new Set(alertnames);
  const active = new Map<string, RuleAlert[]>();
  for (const group of groups as { rules?: unknown }[]) {
    const rules = Array.isArray(group?.rules) ? (group.rules as RawRule[]) : [];
    for (const rule of rules) {
      if (rule.type !== 'alerting' || typeof rule.name !== 'string' || !wanted.has(rule.name)) {
        continue;
      }
      active.set(rule.name, [...(active.get(rule.name) ?? []), ...activeAlertsOf(rule)]);
    }
  }
  return active;
}

/** The driver's own request, which prometheus-query keeps private but `rules()` uses too. */
type DriverRequest = (
  method: 'GET',
  uri: string,
  params: Record<string, unknown>,
) => Promise<{ groups?: unknown }>;

/**
 * The rule engine at RULES_URL (default PROMETHEUS_URL), through the same client as Prometheus
 * (credentials, CA, headers, answer cap): one `GET /api/v1/rules` per call, any path prefix of
 * the URL kept (Mimir's `/prometheus`). `type=alert` and `rule_name[]` let engines that know
 * them (Prometheus 2.46+, Thanos, Mimir) answer only our rules; the others ignore them and the
 * answer is filtered here.
 */
export class PrometheusRuleSource implements RuleSource {
  private readonly driver: PrometheusDriver;

  constructor(connection: PrometheusConnection) {
    this.driver = createPrometheusDriver(connection);
  }

  async activeAlerts(alertnames: readonly string[]): Promise<ActiveAlerts> {
    const request = (this.driver as unknown as { request: DriverRequest }).request.bind(
      this.driver,
    );
    let data;
    try {
      data = await request('GET', 'rules', { type: 'alert', rule_name: [...alertnames] });
    } catch (reason) {
      throw toRulesError(toPrometheusError(reason));
    }
    return toActiveAlerts(data?.groups, alertnames);
  }
}

/** The same error, saying it was the rule engine that failed (RULES_URL may be another host). */
function toRulesError(error: UpstreamError): UpstreamError {
  return new UpstreamError(
    error.upstream,
    error.kind,
    error.retryable,
    `rule engine (RULES_URL): ${error.message}`,
  );
}
