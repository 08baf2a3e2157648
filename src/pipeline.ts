import { childLogger, type Logger } from './adapters/logger.js';
import { splitByCluster, type ClusterScope } from './core/cluster.js';
import { gateCooldown, gateWindow } from './core/cooldown.js';
import type { ActionBudget } from './core/budget.js';
import { gateStopped, type EffectPolicy } from './core/effect.js';
import { describeMeasure, measureOf, type AlertPolicy } from './core/policy.js';
import { gateNamespace, gateScope, type Scope } from './core/scope.js';
import { decide, gateDeployment, type GateResult } from './core/decide.js';
import { targetKey, targetsFromAlerts, type Alert, type TargetAlert } from './core/targets.js';
import type { ChosenPod, DeploymentFacts, Policy, Stats, Target } from './core/types.js';
import type { ActiveWindow } from './core/window.js';
import type { ProvenanceMode } from './core/provenance.js';
import type { PolicyLimit } from './core/policy-limits.js';
import {
  beginIrreversible,
  DeadlineExceeded,
  firstWriteGate,
  requireTimeToAct,
  type Deadline,
} from './deadline.js';
import { UpstreamError } from './errors.js';
import { countUpstreamError, type Metrics } from './metrics.js';
import type {
  ActionBudgetStore,
  AutoscalerSource,
  Clock,
  Cluster,
  CooldownRecord,
  CooldownStore,
  GuardSource,
  MetricsSource,
  RuleSource,
} from './ports.js';
import type { AlertReport, PodReport, Report, TargetReport } from './report.js';
import { anyRemoved, plannedRemovals, removePods } from './stages/act.js';
import { recordEvent } from './stages/events.js';
import { assess, recordAssessment, stopMessage, type Assessment } from './stages/backoff.js';
import { takeActionSlot } from './stages/budget.js';
import { checkScaling } from './stages/autoscaler.js';
import { settleAttempt } from './stages/attempt.js';
import { confirmOnApiServer } from './stages/fresh.js';
import { alertPolicy } from './stages/policy.js';
import { checkGuards, sayHeldBack, type Held } from './stages/guard.js';
import { gateRotation } from './core/rotation.js';
import {
  afterFirstStep,
  planFirstStep,
  withRotation,
  type FirstStep,
  type RotationSettings,
} from './stages/rotation.js';
import { payloadProvenance, type PayloadProvenance } from './stages/provenance.js';
import {
  quietCooldownRepeats,
  recordDecision,
  recordDismissal,
  type DecisionLevels,
} from './stages/record.js';
import { createBatchVerifier, type BatchMember, type BatchVerifier } from './stages/verify.js';
import { keyedSerializer, limiter } from './concurrency.js';

/** The part of the configuration the pipeline reads. */
export interface PipelineSettings {
  alertNames: ReadonlySet<string>;
  /** The threshold and MIN_PODS here apply only where an alert's annotations say nothing. */
  policy: Policy;
  scope: Scope;
  /** ACTION_BUDGET; undefined when off. */
  actionBudget: ActionBudget | undefined;
  metricsWindowMs: number;
  action: 'evict' | 'delete';
  dryRun: boolean;
  activeWindow: ActiveWindow | undefined;
  /** GUARD_QUERY: while it returns series, nothing is acted on. */
  guardQuery: string | undefined;
  effect: EffectPolicy;
  /** CLUSTER / CLUSTER_LABEL: alerts labelled with another cluster are skipped. */
  cluster?: ClusterScope;
  /** ALERT_PROVENANCE: `rules` acts only on alerts the rule engine has active. */
  provenance: ProvenanceMode;
  /** POLICY_LIMITS: an alert's policy outside them is `invalid-policy`. */
  policyLimits?: readonly PolicyLimit[];
  /** ROTATION (where the alert says nothing) and ROTATION_TIMEOUT. */
  rotation: RotationSettings;
}

/** Everything the pipeline touches, passed in once (main.ts, the demo and the tests build it). */
export interface PipelineDeps {
  settings: PipelineSettings;
  cluster: Cluster;
  metrics: MetricsSource;
  guards: GuardSource;
  /** The rule engine that confirms an alert came from a rule (ALERT_PROVENANCE=rules). */
  rules: RuleSource;
  cooldown: CooldownStore;
  actionBudget: ActionBudgetStore;
  /** HorizontalPodAutoscalers; none are considered when absent (the demo). */
  autoscalers?: AutoscalerSource;
  clock: Clock;
  telemetry: Metrics;
  logger: Logger;
  /** This replica's name, written into the Lease it takes. */
  identity: string;
}

/** What one request brings besides its alerts. */
export interface RequestContext {
  requestId: string;
  groupKey?: string;
  /** Decide and report, write nothing: no Lease, no Event, no removal (replay without --execute). */
  observeOnly?: boolean;
  /** Evaluate the CPU query at each alert's startsAt instead of now (replay --at alert). */
  verifyAtAlertStart?: boolean;
  /** The webhook's deadline: nothing irreversible starts without its leave (src/deadline.ts). */
  deadline?: Deadline;
  /** Report whether the rule engine confirms each alert, without requiring it (replay). */
  provenanceAdvisory?: boolean;
}

export interface Pipeline {
  handleAlerts(alerts: readonly Alert[], context: RequestContext): Promise<Report>;
}

const ANY_CLUSTER: ClusterScope = { name: undefined, label: 'cluster' };

/** Deployments acted on at once, across payloads (each is four API calls in a row). */
const ACTING_AT_ONCE = 16;
/**
 * Targets whose cheap gates run at once, across payloads: from the watch caches they take
 * microseconds, but while the caches have not synced each is two API reads, and a payload of a
 * thousand alerts must not become two thousand reads in flight.
 */
const ADMITTING_AT_ONCE = 16;

/**
 * Builds the pipeline: targets → (one at a time per Deployment) gates → cooldown → verify
 * (a namespace's Deployments together) → decide → take the Lease → act → record. The stages
 * live in their own modules; this file only puts them in order.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const serialize = keyedSerializer();
  // Acting is four calls in a row (Lease, two removals, Event): a payload of a thousand acting
  // at once would queue its calls past their timeout after the Lease was taken.
  const acting = limiter(ACTING_AT_ONCE);
  const admitting = limiter(ADMITTING_AT_ONCE);
  const levels = quietCooldownRepeats();
  return {
    async handleAlerts(alerts, context) {
      const { ours, others } = splitByCluster(alerts, deps.settings.cluster ?? ANY_CLUSTER);
      const { targets, duplicates, dismissed } = targetsFromAlerts(ours, deps.settings.alertNames);
      const dismissals = [...dismissed, ...others].map((alert) => {
        const report: AlertReport = { ...alert, outcome: 'skipped' };
        recordDismissal(report, withLog(deps, context, alert));
        return report;
      });
      const members = targets.map((t) => memberOf(t, context));
      const provenance = payloadProvenance(
        targets,
        { mode: deps.settings.provenance, advisory: context.provenanceAdvisory ?? false },
        deps,
      );
      const verifier = createBatchVerifier(members, deps, deps.settings.metricsWindowMs);
      // Every target starts now (in one synchronous pass, so the per-Deployment queues of two
      // payloads are always entered in the same order): a namespace's batch waits for all of
      // its targets, so none may wait behind another for a slot.
      const handled = await Promise.all(
        targets.map((target, i) =>
          serialize(targetKey(target), () =>
            handleTarget(
              { target, member: members[i]!, verifier, acting, admitting, provenance, levels },
              context,
              withLog(deps, context, target),
            ),
          ),
        ),
      );
      const byKey = new Map(targets.map((t, i) => [targetKey(t), handled[i]!]));
      const reportOf = (t: TargetAlert): AlertReport => ({
        fingerprint: t.fingerprint,
        alertname: t.alertname,
        ...byKey.get(targetKey(t))!,
      });
      return {
        requestId: context.requestId,
        results: [...targets.map(reportOf), ...duplicates.map(reportOf), ...dismissals],
      };
    },
  };
}

function withLog(
  deps: PipelineDeps,
  context: RequestContext,
  alert: { fingerprint: string; namespace?: string; deployment?: string },
): PipelineDeps {
  const logger = childLogger(deps.logger, {
    requestId: context.requestId,
    groupKey: context.groupKey,
    fingerprint: alert.fingerprint,
    namespace: alert.namespace,
    deployment: alert.deployment,
  });
  return { ...deps, logger };
}

/** One target of a payload, with its place in its namespace's verification batch. */
interface Work {
  target: TargetAlert;
  member: BatchMember;
  verifier: BatchVerifier;
  /** Bounds how many Deployments act at once. */
  acting: <T>(task: () => Promise<T>) => Promise<T>;
  /** Bounds how many targets pass the cheap gates at once. */
  admitting: <T>(task: () => Promise<T>) => Promise<T>;
  provenance: PayloadProvenance;
  /** The level of each decision's log line (a storm's repeats at debug). */
  levels: DecisionLevels;
}

function memberOf(target: TargetAlert, context: RequestContext): BatchMember {
  const at = context.verifyAtAlertStart ? alertStart(target) : undefined;
  return { key: targetKey(target), namespace: target.namespace, at };
}

async function handleTarget(
  work: Work,
  context: RequestContext,
  deps: PipelineDeps,
): Promise<TargetReport> {
  const { target } = work;
  const stopTimer = deps.telemetry.handlingDuration.startTimer();
  let report: TargetReport;
  try {
    report = await runStages(work, context, deps);
  } catch (error) {
    report = failure(target, error, deps);
  } finally {
    // Whatever stopped this target before verification, its namespace's batch stops waiting.
    work.verifier.leave(work.member);
  }
  stopTimer();
  recordDecision(report, deps, work.levels);
  return report;
}

interface Admitted {
  deployment: DeploymentFacts;
  record: CooldownRecord | undefined;
}

/** The checks that need no CPU data: scope, Deployment, window, stop mark, cooldown, autoscaler. */
async function admit(
  target: TargetAlert,
  deps: PipelineDeps,
  now: Date,
): Promise<Admitted | TargetReport> {
  const { scope, activeWindow } = deps.settings;
  const outside = gateNamespace(scope, target.namespace);
  if (outside) return skipped(target, outside);
  const deployment = await deps.cluster.getDeployment(target);
  const early =
    gateDeployment(deployment) ?? gateScope(scope, deployment!) ?? gateWindow(activeWindow, now);
  if (early || !deployment) return skipped(target, early!);
  const record = await deps.cooldown.read(deployment);
  const held = await gateState(deployment, record, now, deps);
  return held ? skipped(target, held) : { deployment, record };
}

/** What the Deployment's stored state, or an autoscaler moving it, says against acting now. */
async function gateState(
  deployment: DeploymentFacts,
  record: CooldownRecord | undefined,
  now: Date,
  deps: PipelineDeps,
): Promise<GateResult> {
  return (
    gateStopped(record?.stopped, deps.cooldown.howToResume(deployment)) ??
    gateRotation(record, now) ??
    gateCooldown(record, now) ??
    (await checkScaling(deployment, now, deps))
  );
}

/** The alert's own policy first: a rule that says nonsense costs no API call and no query. */
async function runStages(
  work: Work,
  context: RequestContext,
  deps: PipelineDeps,
): Promise<TargetReport> {
  const { policy, policyLimits, rotation } = deps.settings;
  const parsed = alertPolicy(
    work.target,
    { ...policy, rotation: rotation.mode },
    deps,
    policyLimits,
  );
  if (!parsed.ok) return skipped(work.target, parsed);
  const report = await verifyAndAct(work, parsed.policy, context, deps);
  const provenance = work.provenance.finding(work.target);
  return { ...report, policy: parsed.policy, ...(provenance && { provenance }) };
}

async function verifyAndAct(
  { target, member, verifier, acting, admitting, provenance }: Work,
  policy: AlertPolicy,
  context: RequestContext,
  deps: PipelineDeps,
): Promise<TargetReport> {
  const { settings } = deps;
  const now = deps.clock.now();
  const admitted = await admitting(() => admit(target, deps, now));
  if ('outcome' in admitted) return admitted;
  const { deployment, record } = admitted;
  // Before any query and any write: only an alert a rule has active goes further.
  const unconfirmed = await provenance.gate(target);
  if (unconfirmed) return skipped(target, unconfirmed);

  const stopTimer = deps.telemetry.verificationDuration.startTimer();
  const { pods, samples, outOfScope } = await verifier.verify(member, deployment);
  stopTimer();
  if (outOfScope) return skipped(target, outOfScope);
  const { threshold, measure, minPods, minImprovement } = policy;
  const alertOwn = { threshold, measure, minPods, minImprovement };
  const decision = decide(pods, samples, { ...settings.policy, ...alertOwn }, now);
  if (!decision.act) return skipped(target, decision, decision.stats);
  // With the fresh verification and before any Lease is written: a held action leaves no trace.
  const held = await checkGuards(target, settings.guardQuery, deps, member.at);
  if (held) return holdBack(deployment, held, { target, context, stats: decision.stats }, deps);

  const assessment = assess(record, decision.stats, alertStart(target), settings.effect);
  if (assessment.backoff.stopped) {
    if (!context.observeOnly) beginIrreversible(context.deadline);
    return stopActing({ target, deployment, record }, assessment, context, deps);
  }
  const chosen = { ...decision, policy };
  if (context.observeOnly) {
    const planned = plannedRemovals(decision.pods, settings.action);
    return withRotation(acted(deployment, chosen, planned, true), chosen, undefined);
  }
  const rotation = planFirstStep(chosen, {
    target,
    known: pods,
    now,
    timeoutMs: settings.rotation.timeoutMs,
    dryRun: settings.dryRun,
  });
  const plan = { decision: chosen, assessment, rotation, deadline: context.deadline };
  return acting(() => act(deployment, record, plan, deps));
}

/** A guard held the action back (or could not be read): the skip, and once per cooldown an Event. */
async function holdBack(
  deployment: DeploymentFacts,
  held: Held,
  skip: { target: TargetAlert; context: RequestContext; stats: Stats },
  deps: PipelineDeps,
): Promise<TargetReport> {
  if (held.reason === 'guarded' && !skip.context.observeOnly) {
    const context = { cooldownMs: deps.settings.effect.baseCooldownMs, now: deps.clock.now() };
    await sayHeldBack(deployment, held, context, deps);
  }
  return skipped(skip.target, { reason: held.reason, detail: held.detail }, skip.stats);
}

function alertStart(target: TargetAlert): Date | undefined {
  const at = target.startsAt ? new Date(target.startsAt) : undefined;
  return at && !Number.isNaN(at.getTime()) ? at : undefined;
}

/**
 * Reads the Deployment from the API server, then takes a budget slot and the Lease with the
 * next cooldown, then removes the pods: both, or (one by one) the hottest, with the rotation's
 * progress written in the same Lease so that any replica finishes it.
 */
async function act(
  measured: DeploymentFacts,
  record: CooldownRecord | undefined,
  plan: {
    decision: Chosen;
    assessment: Assessment;
    rotation: FirstStep;
    deadline: Deadline | undefined;
  },
  deps: PipelineDeps,
): Promise<TargetReport> {
  const { decision, assessment, rotation } = plan;
  // Waiting for an acting slot may have used the time acting needs: no read for nothing.
  requireTimeToAct(plan.deadline);
  const fresh = await confirmOnApiServer(measured, deps);
  if (!fresh.ok) return skipped(targetOf(measured), fresh.gate, decision.stats);
  const { deployment } = fresh;
  const now = deps.clock.now();
  const dryRun = deps.settings.dryRun;
  // Asked after every queue (acting slots, the budget's), right before the first write.
  const beforeWrite = firstWriteGate(plan.deadline);
  // The budget slot is taken before the cooldown Lease: a refused action leaves no cooldown.
  const action = { now, dryRun, beforeWrite };
  const slot = await takeActionSlot(deployment, deps.settings.actionBudget, action, deps);
  if (!slot.taken) return skipped(targetOf(deployment), slot.gate, decision.stats);
  beforeWrite();
  // The Lease is taken before acting: a retry, a duplicate or another replica that reached
  // this point too finds it taken (409) and stops, so one decision removes at most two pods.
  const taken = await deps.cooldown.start(deployment, record, {
    holder: deps.identity,
    startedAt: now,
    durationMs: assessment.backoff.cooldownMs,
    lastAction: {
      at: now,
      stddev: decision.stats.stddev,
      mean: decision.stats.mean,
      pods: rotation.pods.map((p) => p.name),
      dryRun,
    },
    consecutiveIneffective: assessment.backoff.consecutiveIneffective,
    stopped: undefined,
    rotation: rotation.progress,
  });
  if (!taken) {
    // Another replica acts on this Deployment: it took its own slot, so ours goes back.
    await slot.release();
    return skipped(targetOf(deployment), LOST_RACE, decision.stats);
  }
  const removed = await removePods(
    deployment,
    { ...decision, pods: rotation.pods },
    { action: deps.settings.action, dryRun, now },
    deps,
  );
  const report = acted(deployment, decision, removed, dryRun);
  if (!anyRemoved(removed)) {
    // Only an action is judged: an attempt that removed no pod leaves the feedback loop as it
    // was, and its Lease (a one-by-one rotation's progress with it) goes back to the state before.
    await settleAttempt(deployment, record, { at: now, pods: removed, slot }, deps);
    return report;
  }
  recordAssessment(deployment, assessment, deps.telemetry);
  // Together, or a dry run: both pods went (or would have); a one-by-one dry run says the order.
  if (!rotation.progress) return withRotation(report, decision, undefined);
  const progress = await afterFirstStep(report, deployment, rotation.progress, deps);
  return progress ? withRotation(report, decision, progress) : report;
}

const LOST_RACE = {
  reason: 'cooldown',
  detail: 'another request or replica took the Lease first',
} as const;

/**
 * After INEFFECTIVE_LIMIT consecutive actions that did not help, marks the Lease so that every
 * replica stops acting on the Deployment, and says so with a Warning Event, once.
 */
async function stopActing(
  { target, deployment, record }: Admitted & { target: TargetAlert },
  assessment: Assessment,
  context: RequestContext,
  deps: PipelineDeps,
): Promise<TargetReport> {
  const message = stopMessage(assessment.backoff, deps.settings.effect);
  const gate = {
    reason: 'ineffective',
    detail: `${message}; to resume: ${deps.cooldown.howToResume(deployment)}`,
  } as const;
  if (context.observeOnly) return skipped(target, gate);
  const now = deps.clock.now();
  const written = await deps.cooldown.start(deployment, record, {
    holder: deps.identity,
    startedAt: now,
    durationMs: 0,
    lastAction: record?.lastAction,
    consecutiveIneffective: assessment.backoff.consecutiveIneffective,
    stopped: message,
  });
  if (!written) return skipped(target, LOST_RACE);
  recordAssessment(deployment, assessment, deps.telemetry);
  await recordEvent(
    {
      deployment,
      type: 'Warning',
      reason: 'RebalanceIneffective',
      action: 'Stop',
      message: gate.detail,
      at: now,
    },
    deps,
  );
  return skipped(target, gate);
}

function skipped(target: Target, gate: NonNullable<GateResult>, stats?: Stats): TargetReport {
  return {
    namespace: target.namespace,
    deployment: target.deployment,
    outcome: 'skipped',
    ...gate,
    stats,
  };
}

/** What was chosen to act on, and the alert policy that chose it. */
interface Chosen {
  stats: Stats;
  pods: ChosenPod[];
  policy: AlertPolicy;
}

function targetOf(deployment: DeploymentFacts): Target {
  return { namespace: deployment.namespace, deployment: deployment.name };
}

function acted(
  deployment: DeploymentFacts,
  decision: Chosen,
  pods: PodReport[],
  dryRun: boolean,
): TargetReport {
  const base = {
    namespace: deployment.namespace,
    deployment: deployment.name,
    stats: decision.stats,
    pods,
  };
  const { measure, threshold, source } = decision.policy;
  const value = describeMeasure(measure, measureOf(measure, decision.stats));
  const why = `${value} is above the threshold ${threshold} (${source.threshold})`;
  if (dryRun)
    return {
      ...base,
      outcome: 'dry-run',
      reason: 'imbalanced',
      detail: `${why}; dry run, nothing removed`,
    };
  if (anyRemoved(pods))
    return { ...base, outcome: 'rebalanced', reason: 'imbalanced', detail: why };
  if (pods.some((p) => p.result === 'pdb-blocked')) {
    return {
      ...base,
      outcome: 'skipped',
      reason: 'pdb-blocked',
      detail: 'a PodDisruptionBudget refused the eviction',
    };
  }
  if (pods.some((p) => p.result === 'failed')) {
    return {
      ...base,
      outcome: 'failed',
      reason: 'removal-failed',
      detail: 'the API server failed the removal',
    };
  }
  return {
    ...base,
    outcome: 'skipped',
    reason: 'not-found',
    detail: 'the chosen pods were already gone',
  };
}

function failure(target: TargetAlert, error: unknown, deps: PipelineDeps): TargetReport {
  const base = {
    namespace: target.namespace,
    deployment: target.deployment,
    outcome: 'failed' as const,
  };
  if (error instanceof DeadlineExceeded) {
    return { ...base, reason: 'deadline-exceeded', detail: error.message, retryable: true };
  }
  if (!(error instanceof UpstreamError)) {
    deps.logger.error('unexpected error', {
      error: error instanceof Error ? error.stack : String(error),
    });
    return { ...base, reason: 'internal-error', detail: 'unexpected error, see the logs' };
  }
  countUpstreamError(deps.telemetry, error);
  const reason = `${error.upstream}-${error.retryable ? 'unavailable' : 'error'}` as const;
  return { ...base, reason, detail: error.message, retryable: error.retryable || undefined };
}
