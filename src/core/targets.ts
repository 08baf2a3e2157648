import { isNamespaceName, isObjectName } from './names.js';
import type { SkipReason, Target } from './types.js';

/** The fields of an Alertmanager alert that pod-rebalancer reads (webhook payload version 4). */
export interface Alert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  fingerprint: string;
  startsAt?: string;
  /** The rule's annotations: they carry its policy (core/policy.ts) and guard. */
  annotations?: Record<string, string>;
}

/** An alert that names a Deployment we should look at. */
export interface TargetAlert extends Target {
  fingerprint: string;
  alertname: string;
  startsAt?: string;
  /** All of the alert's labels, as the payload carried them (what the rule engine confirms). */
  labels?: Readonly<Record<string, string>>;
  /** The alert's annotations: the policy the rule in Git attached to it (see SPEC). */
  annotations: Record<string, string>;
}

/** An alert acknowledged without looking at any Deployment. */
export interface DismissedAlert {
  fingerprint: string;
  alertname: string;
  namespace?: string;
  deployment?: string;
  reason: SkipReason;
  detail: string;
}

export interface Targets {
  /** One entry per Deployment, in payload order; alerts naming it again are in `duplicates`. */
  targets: TargetAlert[];
  /** Further firing alerts for a Deployment already in `targets`: handled once, reported each. */
  duplicates: TargetAlert[];
  dismissed: DismissedAlert[];
}

/** The key that makes "one Deployment" one: namespace and name. */
export function targetKey(target: Target): string {
  return `${target.namespace}/${target.deployment}`;
}

/**
 * Splits a payload's alerts into Deployments to examine and alerts to acknowledge. Resolved
 * alerts and alertnames we do not own are acknowledged; an alert without `namespace` and
 * `deployment` labels cannot name a Deployment.
 */
export function targetsFromAlerts(
  alerts: readonly Alert[],
  alertNames: ReadonlySet<string>,
): Targets {
  const result: Targets = { targets: [], duplicates: [], dismissed: [] };
  const seen = new Set<string>();
  for (const alert of alerts) {
    const { alertname = '', namespace, deployment } = alert.labels;
    const base = { fingerprint: alert.fingerprint, alertname, namespace, deployment };
    const dismissal = dismissalOf(alert, alertNames);
    if (dismissal) {
      result.dismissed.push({ ...base, ...dismissal });
      continue;
    }
    const target: TargetAlert = {
      ...base,
      namespace: namespace!,
      deployment: deployment!,
      startsAt: alert.startsAt,
      labels: alert.labels,
      annotations: alert.annotations ?? {},
    };
    const key = targetKey(target);
    (seen.has(key) ? result.duplicates : result.targets).push(target);
    seen.add(key);
  }
  return result;
}

function dismissalOf(
  alert: Alert,
  alertNames: ReadonlySet<string>,
): Pick<DismissedAlert, 'reason' | 'detail'> | undefined {
  const { alertname, namespace, deployment } = alert.labels;
  if (alert.status !== 'firing') return { reason: 'resolved', detail: 'the alert is resolved' };
  if (!alertname || !alertNames.has(alertname)) {
    return {
      reason: 'unknown-alert',
      detail: `alertname "${alertname ?? ''}" is not in ALERT_NAMES`,
    };
  }
  if (!namespace || !deployment) {
    return {
      reason: 'missing-labels',
      detail: 'the alert needs the labels namespace and deployment',
    };
  }
  // The names go into a PromQL selector and an API path: accept only what Kubernetes accepts.
  if (!isNamespaceName(namespace) || !isObjectName(deployment)) {
    return {
      reason: 'missing-labels',
      detail: 'labels namespace and deployment must be Kubernetes names',
    };
  }
  return undefined;
}
