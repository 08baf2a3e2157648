/**
 * The small interfaces through which the pipeline touches the world. main.ts wires the real
 * adapters; the demo and the tests wire their own behind the same shapes.
 */
import type { AutoscalerFacts } from './core/autoscaler.js';
import type { BudgetEntry } from './core/budget.js';
import type { GuardAnswer } from './core/guard.js';
import type { ActiveAlerts } from './core/provenance.js';
import type { RotationProgress } from './core/rotation.js';
import type { CpuSamples, DeploymentFacts, PodFacts, Target } from './core/types.js';

export interface Clock {
  now(): Date;
}

export interface PodCpuQuery {
  namespace: string;
  pods: readonly string[];
  windowMs: number;
  /** Evaluation time; now when absent. */
  at?: Date;
}

/** Fresh per-pod CPU usage, in cores. Pods without a sample are absent from the answer. */
export interface MetricsSource {
  podCpu(query: PodCpuQuery): Promise<CpuSamples>;
}

/**
 * Evaluates guard expressions (GUARD_QUERY, an alert's guard), now or at `at` (a replay of the
 * past): the series they return, or `rejected` when Prometheus refused the expression itself (a
 * syntax error, 400 bad_data), which no retry fixes. Unreachable or failing: throws UpstreamError.
 */
export interface GuardSource {
  guardSeries(expr: string, at?: Date): Promise<GuardAnswer>;
}

/**
 * The rule engine (`/api/v1/rules` of Prometheus, Thanos, Mimir or vmalert): the alerts its
 * alerting rules of these names have active now. Unreachable or failing: throws UpstreamError.
 */
export interface RuleSource {
  activeAlerts(alertnames: readonly string[]): Promise<ActiveAlerts>;
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** What became of one removal request. */
export type RemovalResult = 'removed' | 'pdb-blocked' | 'gone';

export interface DeploymentEvent {
  deployment: DeploymentFacts;
  /**
   * A deterministic name for an Event said once per window (see onceEventName): creating it
   * again is "already said" (409), not an error. Absent: a fresh name each time.
   */
  name?: string;
  type: 'Normal' | 'Warning';
  reason: string;
  action: string;
  message: string;
  at: Date;
}

/** The Kubernetes API as the pipeline needs it. */
export interface Cluster {
  /** The Deployment, from a watch cache where one answers: good enough to skip on. */
  getDeployment(target: Target): Promise<DeploymentFacts | undefined>;
  /** The Deployment from the API server itself, never a cache: what an action is decided on. */
  readDeployment(target: Target): Promise<DeploymentFacts | undefined>;
  listPods(deployment: DeploymentFacts): Promise<PodFacts[]>;
  /** The pods of several Deployments of one namespace, by Deployment name, in one go. */
  listPodsByDeployment(
    namespace: string,
    deployments: readonly DeploymentFacts[],
  ): Promise<Map<string, PodFacts[]>>;
  /** Eviction API: honours PodDisruptionBudgets. Only removes the pod with this uid. */
  evictPod(pod: PodRef): Promise<RemovalResult>;
  /** Direct deletion with a uid precondition. */
  deletePod(pod: PodRef): Promise<RemovalResult>;
  recordEvent(event: DeploymentEvent): Promise<void>;
}

/** What was done at the start of a cooldown, kept so it can be judged later. */
export interface ActionRecord {
  at: Date;
  stddev: number;
  mean: number;
  pods: string[];
  dryRun: boolean;
}

/** A Deployment's cooldown and backoff state as stored (a Lease in a cluster). */
export interface CooldownRecord {
  /** Opaque version for optimistic concurrency (the Lease's resourceVersion). */
  version: string;
  holder: string;
  startedAt: Date;
  durationMs: number;
  lastAction: ActionRecord | undefined;
  consecutiveIneffective: number;
  /** Set while pod-rebalancer refuses to act on this Deployment; a person clears it. */
  stopped: string | undefined;
  /** A one-by-one rotation (core/rotation.ts): between its steps, or how it ended. */
  rotation?: RotationProgress;
  /** The last attempt that removed no pod (not an action: it is never judged). */
  lastAttempt?: AttemptRecord;
  /** When this process first saw this version of the record, by its own clock (clock skew). */
  observedAt?: Date;
}

/** An attempt that removed no pod: when, and what became of each pod ("name: result"). */
export interface AttemptRecord {
  at: Date;
  pods: string[];
}

/** A stored cooldown with the Deployment it belongs to (for the sweep and `status`). */
export interface CooldownEntry {
  target: Target;
  /** The uid of the Deployment the state was written for; a recreated Deployment has another. */
  deploymentUid: string;
  record: CooldownRecord;
}

/** The next state to write. */
export type CooldownStart = Omit<CooldownRecord, 'version' | 'observedAt'>;

export interface CooldownStore {
  read(deployment: DeploymentFacts): Promise<CooldownRecord | undefined>;
  /**
   * Writes the next state if the stored record is still `previous` (absent when `undefined`).
   * Returns false when another writer got there first: then someone else is acting.
   */
  start(
    deployment: DeploymentFacts,
    previous: CooldownRecord | undefined,
    next: CooldownStart,
  ): Promise<boolean>;
  /** What a person does to let pod-rebalancer act again on a Deployment it stopped on. */
  howToResume(deployment: DeploymentFacts): string;
  /**
   * Every stored cooldown; with `rotating`, only those that carry a rotation (skipped before
   * being parsed). A store may return more: callers still check `inProgress`.
   */
  list(filter?: { rotating?: boolean }): Promise<CooldownEntry[]>;
  /** Deletes a stored cooldown if it is still at the version listed; false when it changed. */
  remove(entry: CooldownEntry): Promise<boolean>;
}

/** The cluster-wide action budget as stored (one Lease in STATE_NAMESPACE). */
export interface BudgetRecord {
  /** Opaque version for optimistic concurrency (the Lease's resourceVersion). */
  version: string;
  entries: BudgetEntry[];
}

/** Where the action budget lives, shared by every replica. */
export interface ActionBudgetStore {
  read(): Promise<BudgetRecord | undefined>;
  /**
   * Writes the entries if the stored record is still `previous` (absent when `undefined`).
   * Returns false when another writer got there first: read again and decide again.
   */
  write(
    previous: BudgetRecord | undefined,
    entries: readonly BudgetEntry[],
    holder: string,
  ): Promise<boolean>;
}

/** The HorizontalPodAutoscalers of a namespace (from a watch cache in a cluster). */
export interface AutoscalerSource {
  autoscalers(namespace: string): Promise<AutoscalerFacts[]>;
}
