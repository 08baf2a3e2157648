/** An Alertmanager v4 payload for the given alerts (defaults: one firing DeploymentCPUImbalance). */
export function payload(
  alerts: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    status?: string;
    fingerprint?: string;
  }[] = [{}],
): Record<string, unknown> {
  return {
    version: '4',
    status: 'firing',
    receiver: 'pod-rebalancer',
    groupKey: '{}/{alertname="DeploymentCPUImbalance"}:{deployment="api", namespace="payments"}',
    truncatedAlerts: 0,
    alerts: alerts.map((a, i) => ({
      status: a.status ?? 'firing',
      labels: a.labels ?? {
        alertname: 'DeploymentCPUImbalance',
        namespace: 'payments',
        deployment: 'api',
      },
      annotations: a.annotations ?? {},
      startsAt: '2026-11-28T16:44:56.709Z',
      endsAt: '0001-01-01T00:00:00Z',
      fingerprint: a.fingerprint ?? `f${i}`,
    })),
  };
}
