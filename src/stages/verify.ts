import type { GateResult } from '../core/decide.js';
import { gatePods } from '../core/scope.js';
import type { CpuSamples, DeploymentFacts, PodFacts } from '../core/types.js';
import type { Cluster, MetricsSource } from '../ports.js';

export interface Verification {
  pods: PodFacts[];
  samples: CpuSamples;
  /** Set when a pod is system-critical (its own spec.priority): its CPU was never asked for. */
  outOfScope?: GateResult;
}

/** One Deployment to verify: it joins its namespace's batch, or leaves it (skipped earlier). */
export interface BatchMember {
  /** Unique within the payload (targetKey). */
  key: string;
  namespace: string;
  /** Evaluation time; now when absent. */
  at?: Date;
}

export interface BatchVerifier {
  /** Fresh pods and CPU of this Deployment, fetched together with its namespace's others. */
  verify(member: BatchMember, deployment: DeploymentFacts): Promise<Verification>;
  /** This member will not verify (a gate stopped it, or it failed): the batch stops waiting. */
  leave(member: BatchMember): void;
}

interface Waiting {
  deployment: DeploymentFacts;
  resolve: (verification: Verification) => void;
  reject: (reason: unknown) => void;
}

interface Batch {
  namespace: string;
  at: Date | undefined;
  /** Members that have neither arrived nor left. */
  pending: Set<string>;
  arrived: Waiting[];
}

function batchKey(member: BatchMember): string {
  return `${member.namespace}\n${member.at?.getTime() ?? 'now'}`;
}

function pick(samples: CpuSamples, pods: readonly PodFacts[]): CpuSamples {
  const mine = new Map<string, number>();
  for (const pod of pods) {
    const value = samples.get(pod.name);
    if (value !== undefined) mine.set(pod.name, value);
  }
  return mine;
}

/**
 * Fresh facts for the decisions of one payload: the Deployments of a namespace are verified
 * together, with one pod list and one Prometheus query, as soon as every target of that
 * namespace has either arrived here or been stopped by an earlier gate (no waiting window).
 * The alert that brought us here may be minutes old; these facts are not. A failure fails
 * every Deployment of that batch alike.
 */
export function createBatchVerifier(
  members: readonly BatchMember[],
  deps: { cluster: Cluster; metrics: MetricsSource },
  windowMs: number,
): BatchVerifier {
  const batches = new Map<string, Batch>();
  for (const member of members) {
    const key = batchKey(member);
    let batch = batches.get(key);
    if (!batch) {
      batch = { namespace: member.namespace, at: member.at, pending: new Set(), arrived: [] };
      batches.set(key, batch);
    }
    batch.pending.add(member.key);
  }

  const settle = (batch: Batch, member: BatchMember): void => {
    batch.pending.delete(member.key);
    if (batch.pending.size > 0 || batch.arrived.length === 0) return;
    const arrived = batch.arrived.splice(0);
    void fetchTogether(batch, arrived, deps, windowMs);
  };

  return {
    verify(member, deployment) {
      const batch = batches.get(batchKey(member));
      if (!batch?.pending.has(member.key)) {
        // Not announced (or already settled): verified on its own.
        return fetchAlone(deployment, member.at, deps, windowMs);
      }
      const answer = new Promise<Verification>((resolve, reject) =>
        batch.arrived.push({ deployment, resolve, reject }),
      );
      settle(batch, member);
      return answer;
    },
    leave(member) {
      const batch = batches.get(batchKey(member));
      if (batch?.pending.has(member.key)) settle(batch, member);
    },
  };
}

async function fetchTogether(
  batch: Batch,
  arrived: Waiting[],
  deps: { cluster: Cluster; metrics: MetricsSource },
  windowMs: number,
): Promise<void> {
  try {
    const podsOf = await deps.cluster.listPodsByDeployment(
      batch.namespace,
      arrived.map((w) => w.deployment),
    );
    // Scope before the query: a Deployment with a system-critical pod is answered here.
    const measured = arrived.filter((waiting) => {
      const pods = podsOf.get(waiting.deployment.name) ?? [];
      const outOfScope = gatePods(pods);
      if (outOfScope) waiting.resolve({ pods, samples: new Map(), outOfScope });
      return !outOfScope;
    });
    if (measured.length === 0) return;
    const all = measured.flatMap((waiting) => podsOf.get(waiting.deployment.name) ?? []);
    const samples = await deps.metrics.podCpu({
      namespace: batch.namespace,
      pods: all.map((p) => p.name),
      windowMs,
      at: batch.at,
    });
    for (const waiting of measured) {
      const pods = podsOf.get(waiting.deployment.name) ?? [];
      waiting.resolve({ pods, samples: pick(samples, pods) });
    }
  } catch (error) {
    for (const waiting of arrived) waiting.reject(error);
  }
}

async function fetchAlone(
  deployment: DeploymentFacts,
  at: Date | undefined,
  deps: { cluster: Cluster; metrics: MetricsSource },
  windowMs: number,
): Promise<Verification> {
  const pods = await deps.cluster.listPods(deployment);
  const outOfScope = gatePods(pods);
  if (outOfScope) return { pods, samples: new Map(), outOfScope };
  const samples = await deps.metrics.podCpu({
    namespace: deployment.namespace,
    pods: pods.map((p) => p.name),
    windowMs,
    at,
  });
  return { pods, samples };
}
