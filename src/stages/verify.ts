import type { CpuSamples, DeploymentFacts, PodFacts } from '../core/types.js';
import type { Cluster, MetricsSource } from '../ports.js';

export interface Verification {
  pods: PodFacts[];
  samples: CpuSamples;
}

/**
 * Fresh facts for the decision: the Deployment's pods (through its selector) and their CPU
 * over the metrics window, now (or at `at`, for a replay of the past). The alert that brought
 * us here may be minutes old; these are not.
 */
export async function verify(
  deployment: DeploymentFacts,
  deps: { cluster: Cluster; metrics: MetricsSource },
  windowMs: number,
  at?: Date,
): Promise<Verification> {
  const pods = await deps.cluster.listPods(deployment);
  const samples = await deps.metrics.podCpu({
    namespace: deployment.namespace,
    pods: pods.map((p) => p.name),
    windowMs,
    at,
  });
  return { pods, samples };
}
