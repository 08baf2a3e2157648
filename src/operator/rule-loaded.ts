import type { PrometheusDriver } from 'prometheus-query';
import type { CheckResult } from './check-result.js';

/** One alerting rule as Prometheus's `/api/v1/rules` reports it. */
export interface LoadedAlertRule {
  name: string;
  health: string;
  lastError?: string;
  query: string;
  group: string;
}

const LOAD_FIX =
  'Prometheus did not select the rule. kube-prometheus-stack selects PrometheusRules by the label ' +
  'release=<Helm release>: add the component deploy/components/kube-prometheus-stack to your overlay ' +
  '(docs/operations.md, "kube-prometheus-stack"); plain Prometheus: add rules/pod-rebalancer.rules.yml to rule_files';
const HEALTH_FIX =
  "the rule does not evaluate: read its error on Prometheus's Status > Rules page; the series it needs are checked above";
const ENFORCED_FIX =
  'enforcedNamespaceLabel rewrote the rule to one namespace: list the PrometheusRule in the ' +
  'Prometheus resource\'s excludedFromEnforcement (docs/operations.md, "kube-prometheus-stack")';

/**
 * Every alerting rule Prometheus has loaded, with its health, asked through the same client
 * (credentials, CA, headers) the service queries with.
 */
export async function loadedAlertRules(driver: PrometheusDriver): Promise<LoadedAlertRule[]> {
  const groups = await driver.rules();
  return groups.flatMap((group) =>
    (group.rules ?? [])
      .filter((rule) => rule.type === 'alerting' && typeof rule.name === 'string')
      .map((rule) => ({
        name: rule.name,
        health: rule.health ?? 'unknown',
        query: rule.query ?? '',
        group: group.name ?? '',
      })),
  );
}

/**
 * Whether each alert the service acts on (ALERT_NAMES) is a rule Prometheus has loaded and can
 * evaluate. A rule that is missing installs cleanly and never fires: a dry-run burn-in then shows
 * nothing, which reads as "no imbalance". A rule pinned to one namespace by the operator's
 * enforcedNamespaceLabel fires only for the namespace it lives in.
 */
export function judgeAlertRules(
  alertNames: Iterable<string>,
  loaded: readonly LoadedAlertRule[],
): CheckResult[] {
  return [...alertNames].map((name) => {
    const check = `prometheus alert rule ${name}`;
    const rules = loaded.filter((rule) => rule.name === name);
    if (rules.length === 0) {
      return { check, ok: false, detail: 'not loaded in Prometheus', fix: LOAD_FIX };
    }
    const broken = rules.find((rule) => rule.health === 'err');
    if (broken) {
      return {
        check,
        ok: false,
        detail: `loaded (group ${broken.group}) but failing${broken.lastError ? `: ${broken.lastError}` : ' (health err)'}`,
        fix: HEALTH_FIX,
      };
    }
    // Our rule never filters on one namespace; a matcher namespace="..." was injected.
    const pinned = rules.find((rule) => /\bnamespace="[^"]*"/.test(rule.query));
    if (pinned) {
      const namespace = /\bnamespace="([^"]*)"/.exec(pinned.query)![1];
      return {
        check,
        ok: false,
        detail: `loaded, but rewritten to watch namespace "${namespace}" only`,
        fix: ENFORCED_FIX,
      };
    }
    const health = rules.every((rule) => rule.health === 'ok') ? 'ok' : 'not evaluated yet';
    return { check, ok: true, detail: `loaded (group ${rules[0]!.group}), health ${health}` };
  });
}
