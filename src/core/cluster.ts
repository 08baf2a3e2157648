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
 * not make us act here. Decided before any query. With CLUSTER set, an alert without the label
 * is not ours either: where it came from cannot be told, and acting on it in every cluster is the
 * mistake this rule exists to prevent (Prometheus adds the label with `external_labels`).
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
    if (cluster === scope.name) {
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
      detail: cluster
        ? `the alert's ${scope.label} label is "${cluster}"; this is cluster "${scope.name}"`
        : `the alert has no ${scope.label} label and CLUSTER is "${scope.name}" (add it with Prometheus's external_labels)`,
    });
  }
  return { ours, others };
}
