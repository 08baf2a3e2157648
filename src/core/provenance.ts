/**
 * Provenance: an alert is trusted only when the rule engine confirms that one of its alerting
 * rules has it active. The payload alone proves only that Alertmanager sent it, and
 * Alertmanager's API accepts alerts from anyone who can reach it; the policy travels in the
 * annotations, so a forged alert could otherwise set its own threshold. Pure: what the rule
 * engine's answer means for one alert.
 */
import type { GateResult } from './decide.js';
import type { TargetAlert } from './targets.js';

/** ALERT_PROVENANCE: `rules` asks the rule engine; `off` trusts every alert with the token. */
export const PROVENANCE_MODES = ['rules', 'off'] as const;
export type ProvenanceMode = (typeof PROVENANCE_MODES)[number];

/** Every annotation that carries policy starts so; all of them must match, whatever their name. */
const POLICY_ANNOTATION_PREFIX = 'pod_rebalancer_';

/** One alert a rule has active (pending or firing), as the rule engine reports it. */
export interface RuleAlert {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

/** The active alerts of the rule engine's alerting rules, by rule name (the alertname). */
export type ActiveAlerts = ReadonlyMap<string, readonly RuleAlert[]>;

/** The labels that name the target: the rule itself must set them, never Alertmanager alone. */
const TARGET_LABELS = ['namespace', 'deployment'] as const;

function policyAnnotationsOf(annotations: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(annotations)
    .filter(([key]) => key.startsWith(POLICY_ANNOTATION_PREFIX))
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

/** Whether two alerts carry exactly the same `pod_rebalancer_*` annotations. */
function samePolicy(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): boolean {
  const left = policyAnnotationsOf(a);
  const right = policyAnnotationsOf(b);
  return (
    left.length === right.length &&
    left.every(([key, value], i) => right[i]![0] === key && right[i]![1] === value)
  );
}

/**
 * Whether `active` has these labels: each of its labels is among them with the same value
 * (Alertmanager's copy may carry more, such as external labels), and it names the Deployment
 * itself, so that no label added on the way can point a rule's alert at another Deployment.
 */
function sameLabels(active: RuleAlert, labels: Readonly<Record<string, string>>): boolean {
  return (
    TARGET_LABELS.every((k) => active.labels[k] !== undefined) &&
    Object.entries(active.labels).every(([k, v]) => labels[k] === v)
  );
}

/** A rules answer looked up by rule and target: built once per payload, not once per alert. */
export interface IndexedAlerts {
  /** How many alerts each rule has active. */
  counts: ReadonlyMap<string, number>;
  /** The active alerts that name a Deployment, by rule, namespace and Deployment. */
  byTarget: ReadonlyMap<string, readonly RuleAlert[]>;
}

const indexKey = (alertname: string, namespace: string, deployment: string) =>
  `${alertname}\n${namespace}\n${deployment}`;

/**
 * Indexes the rules answer by target: a payload of a thousand alerts against a thousand active
 * ones would otherwise compare every pair. Only an alert that names both target labels can
 * confirm one (sameLabels), so the others are counted and left out of the index.
 */
export function indexAlerts(active: ActiveAlerts): IndexedAlerts {
  const counts = new Map<string, number>();
  const byTarget = new Map<string, RuleAlert[]>();
  for (const [alertname, alerts] of active) {
    counts.set(alertname, alerts.length);
    for (const alert of alerts) {
      const { namespace, deployment } = alert.labels;
      if (namespace === undefined || deployment === undefined) continue;
      const key = indexKey(alertname, namespace, deployment);
      byTarget.set(key, [...(byTarget.get(key) ?? []), alert]);
    }
  }
  return { counts, byTarget };
}

/**
 * The gate: undefined when a rule of the alert's name has it active with exactly its policy
 * annotations, else `unconfirmed-alert` saying what was missing (no such rule or active alert,
 * none with these labels, or one with another policy).
 */
export function gateProvenance(
  target: TargetAlert,
  active: ActiveAlerts | IndexedAlerts,
): GateResult {
  const indexed = 'byTarget' in active ? active : indexAlerts(active);
  if (!indexed.counts.get(target.alertname)) {
    return unconfirmed(`no alerting rule ${target.alertname} has an active alert`);
  }
  const labels = target.labels ?? {
    alertname: target.alertname,
    namespace: target.namespace,
    deployment: target.deployment,
  };
  const candidates =
    indexed.byTarget.get(indexKey(target.alertname, target.namespace, target.deployment)) ?? [];
  const same = candidates.filter((a) => sameLabels(a, labels));
  if (same.length === 0) {
    return unconfirmed(
      `no active alert of rule ${target.alertname} has these labels (${target.namespace}/${target.deployment})`,
    );
  }
  if (!same.some((a) => samePolicy(a.annotations, target.annotations))) {
    return unconfirmed(
      `the rule's active alert for ${target.namespace}/${target.deployment} carries other ${POLICY_ANNOTATION_PREFIX}* annotations`,
    );
  }
  return undefined;
}

function unconfirmed(why: string): GateResult {
  return { reason: 'unconfirmed-alert', detail: `not confirmed by the rule engine: ${why}` };
}
