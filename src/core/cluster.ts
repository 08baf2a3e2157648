import type { Alert, DismissedAlert } from './targets.js';

/** Which cluster this service acts in (CLUSTER / CLUSTER_LABEL). */
export interface ClusterScope {
  /** This cluster's name; unset: every alert is taken as this cluster's. */
  name: string | undefined;
  /** The alert label that names the cluster. */
  label: string;
}

/**
 * Splits alerts into this cluster's and the others'. With one Alertmanager (or one Thanos/Mimir
 * ruler) for many clusters, an alert for the same namespace/deployment in another cluster must
 * not make us act here. Decided before any query. An alert without the label is taken as ours:
 * rules evaluated inside this cluster's Prometheus often carry no cluster label.
 */
export function splitByCluster(
  alerts: readonly Alert[],
  scope: ClusterScope,
): { ours: Alert[]; others: DismissedAlert[] } {
  if (!scope.name) return { ours: [...alerts], others: [] };
  const ours: Alert[] = [];
  const others: DismissedAlert[] = [];
  for (const alert of alerts) {
    const cluster = alert.labels[scope.label];
    if (cluster === undefined || cluster === '' || cluster === scope.name) {
      ours.push(alert);
      continue;
    }
    const { alertname = '', namespace, deployment } = alert.labels;
    others.push({
      fingerprint: alert.fingerprint,
      alertname,
      namespace,
      deployment,
      reason: 'other-cluster',
      detail: `the alert's ${scope.label} label is "${cluster}"; this is cluster "${scope.name}"`,
    });
  }
  return { ours, others };
}
