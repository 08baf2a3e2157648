/**
 * A cooldown Lease as the service writes it: its last action at `at`, its stop mark if any,
 * written for the Deployment of uid `uid-<deployment>` unless `uid` says otherwise.
 */
export function cooldownLeaseAt(
  namespace: string,
  deployment: string,
  at: Date,
  options: { seconds?: number; ineffective?: number; stopped?: string; uid?: string } = {},
) {
  const micro = at.toISOString().replace('Z', '000Z');
  const annotations: Record<string, string> = {
    'pod-rebalancer.io/deployment': deployment,
    'pod-rebalancer.io/deployment-uid': options.uid ?? `uid-${deployment}`,
    'pod-rebalancer.io/consecutive-ineffective': String(options.ineffective ?? 0),
    'pod-rebalancer.io/last-action': JSON.stringify({
      at: at.toISOString(),
      stddev: 0.5,
      mean: 0.6,
      pods: [`${deployment}-hot`, `${deployment}-cold`],
      dryRun: false,
    }),
  };
  if (options.stopped) annotations['pod-rebalancer.io/ineffective'] = options.stopped;
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: `${namespace}.${deployment}`,
      namespace: 'pod-rebalancer',
      resourceVersion: '10',
      labels: {
        'pod-rebalancer.io/namespace': namespace,
        'pod-rebalancer.io/deployment': deployment,
      },
      annotations,
    },
    spec: {
      holderIdentity: 'replica-a',
      acquireTime: micro,
      renewTime: micro,
      leaseDurationSeconds: options.seconds,
    },
  };
}

/** The action budget's Lease as the service writes it: one entry per action, at these times. */
export function budgetLeaseAt(actions: readonly Date[]) {
  return {
    metadata: {
      name: 'pod-rebalancer-action-budget',
      namespace: 'pod-rebalancer',
      resourceVersion: '11',
      annotations: {
        'pod-rebalancer.io/actions': JSON.stringify(
          actions.map((at, i) => ({ id: `action-${i}`, at })),
        ),
      },
    },
    spec: {},
  };
}
