/**
 * The backtest's simulation: pure, from per-pod CPU history. It replays the alert rule step by
 * step (threshold, `for:`, the pod-count and average-load guards) and, at each notification
 * Alertmanager would have sent, the service: ACTIVE_WINDOW, stop mark, cooldown, the decision core
 * `decide()` and the adaptive backoff, exactly the functions the webhook pipeline calls.
 *
 * What history cannot tell: pods' readiness and start times. A pod counts as Running and Ready
 * while it has a sample, and as started at its first sample (or earlier, when it already has
 * samples at the start of the fetched history). History after an action that really happened is
 * what the cluster did, not what it would have done without it: it is not counterfactual.
 */
import type { Rotation } from '../core/rotation.js';
import { gateCooldown, gateWindow } from '../core/cooldown.js';
import { decide } from '../core/decide.js';
import type { EffectPolicy } from '../core/effect.js';
import { measureOf, type Measure } from '../core/policy.js';
import { computeStats } from '../core/stats.js';
import type { ChosenPod, PodFacts, Policy, SkipReason, Stats } from '../core/types.js';
import type { ActiveWindow } from '../core/window.js';
import type { CooldownRecord } from '../ports.js';
import { assess, stopMessage } from '../stages/backoff.js';

/** Evenly spaced evaluation times: `startMs + i * stepMs` for i in [0, length). */
export interface Timeline {
  startMs: number;
  stepMs: number;
  length: number;
}

/** One pod's CPU (cores) at each step of the timeline; NaN where it has no sample. */
export interface PodSeries {
  name: string;
  values: Float64Array;
}

export interface DeploymentHistory {
  namespace: string;
  deployment: string;
  timeline: Timeline;
  pods: PodSeries[];
}

/** The alert rule's parameters (rules/pod-rebalancer.rules.yml). */
export interface RuleModel {
  /** In the measure's unit: cores for `stddev`, a ratio for `relative_stddev`. */
  threshold: number;
  /** `stddev` when absent. */
  measure?: Measure;
  forMs: number;
  /** The `count(...) >= N` guard. */
  minPods: number;
  /** The `avg(...) > X` guard, in cores. */
  minAverage: number;
  /** Its `pod_rebalancer_min_improvement` annotation; the service's MIN_IMPROVEMENT when absent. */
  minImprovement?: number;
}

/** The service's parameters (the configuration) and Alertmanager's repeat interval. */
export interface ServiceModel {
  minPods: number;
  minPodAgeMs: number;
  effect: EffectPolicy;
  repeatIntervalMs: number;
  /** ACTIVE_WINDOW, when configured. */
  activeWindow?: ActiveWindow;
  /** MIN_IMPROVEMENT; DEFAULT_MIN_IMPROVEMENT when absent. */
  minImprovement?: number;
  /** ROTATION: how the two pods go where a rule's alert does not say; `together` when absent. */
  rotation?: Rotation;
}

/** One time the alert fired: from its first firing evaluation to the one that found it gone. */
export interface Episode {
  firingAt: number;
  /** Undefined while still firing at the end of the range. */
  resolvedAt: number | undefined;
}

export interface SimulatedAction {
  at: number;
  stats: Stats;
  pods: ChosenPod[];
  /** The cooldown that starts with it (doubled after ineffective actions). */
  cooldownMs: number;
}

/** An action a guard would have held back: when, by what, and what it would have removed. */
export interface HeldBackAction {
  at: number;
  /** The guard and the first series it returned. */
  detail: string;
  stats: Stats;
  pods: ChosenPod[];
}

/** At a notification time: the guard that holds then (its detail), or undefined. */
export type GuardAt = (t: number) => string | undefined;

export interface ThresholdResult {
  threshold: number;
  measure: Measure;
  episodes: Episode[];
  /** Time the alert condition held (threshold and guards), pending or firing. */
  aboveMs: number;
  firingMs: number;
  notifications: number;
  actions: SimulatedAction[];
  skipped: Partial<Record<SkipReason, number>>;
  /** With guards: the actions they held back (skipped as `guarded`). */
  heldBack?: HeldBackAction[];
  /**
   * How many fewer actions than without the improvement gate (MIN_IMPROVEMENT): the same
   * notifications replayed with the gate off, since a skip starts no cooldown.
   */
  removedByImprovementGate: number;
}

/** The per-step statistics the rule sees: every pod with a sample, no eligibility filter. */
export interface StepStats {
  count: Float64Array;
  mean: Float64Array;
  stddev: Float64Array;
}

/** What `stddev`, `count` and `avg by (namespace, deployment)` give at each step. */
export function stepStats(history: DeploymentHistory): StepStats {
  const { length } = history.timeline;
  const result = {
    count: new Float64Array(length),
    mean: new Float64Array(length).fill(NaN),
    stddev: new Float64Array(length).fill(NaN),
  };
  const values: number[] = [];
  for (let i = 0; i < length; i++) {
    values.length = 0;
    for (const pod of history.pods) if (Number.isFinite(pod.values[i])) values.push(pod.values[i]!);
    const stats = computeStats(values);
    result.count[i] = stats.count;
    result.mean[i] = stats.mean;
    result.stddev[i] = stats.stddev;
  }
  return result;
}

function conditionHolds(stats: StepStats, i: number, rule: RuleModel): boolean {
  return (
    stats.count[i]! >= rule.minPods &&
    measureOf(rule.measure ?? 'stddev', { mean: stats.mean[i]!, stddev: stats.stddev[i]! }) >
      rule.threshold &&
    stats.mean[i]! > rule.minAverage
  );
}

/**
 * The alert rule, evaluated at each step the way Prometheus does: pending from the first step
 * the expression holds, firing once it has held for `for:`, inactive at the first step it does
 * not. Returns the episodes that were firing at or after `fromMs`, and the time (from `fromMs`)
 * the condition held.
 */
export function simulateRule(
  stats: StepStats,
  timeline: Timeline,
  rule: RuleModel,
  fromMs: number,
): { episodes: Episode[]; aboveMs: number } {
  const episodes: Episode[] = [];
  let activeAt: number | undefined;
  let current: Episode | undefined;
  let aboveMs = 0;
  for (let i = 0; i < timeline.length; i++) {
    const t = timeline.startMs + i * timeline.stepMs;
    if (!conditionHolds(stats, i, rule)) {
      if (current) current.resolvedAt = t;
      activeAt = current = undefined;
      continue;
    }
    activeAt ??= t;
    if (t >= fromMs) aboveMs += timeline.stepMs;
    if (!current && t - activeAt >= rule.forMs) {
      current = { firingAt: t, resolvedAt: undefined };
      episodes.push(current);
    }
  }
  return { episodes: episodes.filter((e) => (e.resolvedAt ?? Infinity) > fromMs), aboveMs };
}

/** When Alertmanager notifies about one episode: when it starts firing, then every repeat interval. */
export function notificationTimes(
  episode: Episode,
  repeatIntervalMs: number,
  range: { fromMs: number; endMs: number },
): number[] {
  const times: number[] = [];
  const until = Math.min(episode.resolvedAt ?? Infinity, range.endMs + 1);
  for (let t = episode.firingAt; t < until; t += repeatIntervalMs) {
    if (t >= range.fromMs) times.push(t);
  }
  return times;
}

/** The index of each pod's first sample: it stands for the pod's start time. */
function firstSamples(history: DeploymentHistory): Map<string, number> {
  const first = new Map<string, number>();
  for (const pod of history.pods) {
    const index = pod.values.findIndex((v) => Number.isFinite(v));
    if (index >= 0) first.set(pod.name, index);
  }
  return first;
}

/** The facts `decide()` needs at step i: pods with a sample count as Running and Ready. */
function factsAt(
  history: DeploymentHistory,
  i: number,
  context: { first: Map<string, number>; minPodAgeMs: number },
): { pods: PodFacts[]; samples: Map<string, number> } {
  const { startMs, stepMs } = history.timeline;
  const pods: PodFacts[] = [];
  const samples = new Map<string, number>();
  for (const series of history.pods) {
    const value = series.values[i]!;
    if (!Number.isFinite(value)) continue;
    const firstIndex = context.first.get(series.name)!;
    // Samples from the very start of the fetched history: the pod is at least that old.
    const startedAt =
      firstIndex === 0 ? startMs - context.minPodAgeMs : startMs + firstIndex * stepMs;
    pods.push({
      name: series.name,
      uid: series.name,
      phase: 'Running',
      ready: true,
      terminating: false,
      startedAt: new Date(startedAt),
    });
    samples.set(series.name, value);
  }
  return { pods, samples };
}

interface ServiceState {
  record: CooldownRecord | undefined;
  actions: SimulatedAction[];
  skipped: Partial<Record<SkipReason, number>>;
  heldBack: HeldBackAction[];
}

function skip(state: ServiceState, reason: SkipReason): void {
  state.skipped[reason] = (state.skipped[reason] ?? 0) + 1;
}

/** As in the pipeline: guards after decide, before any Lease (so no cooldown starts). */
function heldBack(
  guardAt: GuardAt | undefined,
  t: number,
  decision: { stats: Stats; pods: ChosenPod[] },
  state: ServiceState,
): boolean {
  const detail = guardAt?.(t);
  if (detail === undefined) return false;
  state.heldBack.push({ at: t, detail, stats: decision.stats, pods: decision.pods });
  return true;
}

/** The service verifies against the policy the alert carries: the rule's. */
function alertPolicyOf(rule: RuleModel, service: ServiceModel): Policy {
  return {
    threshold: rule.threshold,
    measure: rule.measure,
    minPods: rule.minPods || service.minPods,
    minPodAgeMs: service.minPodAgeMs,
    minImprovement: rule.minImprovement ?? service.minImprovement,
  };
}

/** One notification handled as the pipeline would: window, stop mark, cooldown, decide, backoff. */
function handleNotification(
  history: DeploymentHistory,
  at: { t: number; episode: Episode; rule: RuleModel },
  service: ServiceModel & { first: Map<string, number>; guardAt?: GuardAt },
  state: ServiceState,
): void {
  const now = new Date(at.t);
  if (gateWindow(service.activeWindow, now)) return skip(state, 'outside-window');
  if (state.record?.stopped !== undefined) return skip(state, 'ineffective');
  if (gateCooldown(state.record, now)) return skip(state, 'cooldown');
  const index = Math.round((at.t - history.timeline.startMs) / history.timeline.stepMs);
  const { pods, samples } = factsAt(history, index, service);
  const decision = decide(pods, samples, alertPolicyOf(at.rule, service), now);
  if (!decision.act) return skip(state, decision.reason);
  if (heldBack(service.guardAt, at.t, decision, state)) return skip(state, 'guarded');
  const { backoff } = assess(
    state.record,
    decision.stats,
    new Date(at.episode.firingAt),
    service.effect,
  );
  const base = state.record ?? { version: '', holder: 'backtest', startedAt: now, durationMs: 0 };
  if (backoff.stopped) {
    state.record = {
      ...base,
      lastAction: state.record?.lastAction,
      consecutiveIneffective: backoff.consecutiveIneffective,
      stopped: stopMessage(backoff, service.effect),
    };
    return skip(state, 'ineffective');
  }
  state.record = {
    ...base,
    startedAt: now,
    durationMs: backoff.cooldownMs,
    lastAction: {
      at: now,
      stddev: decision.stats.stddev,
      mean: decision.stats.mean,
      pods: decision.pods.map((p) => p.name),
      dryRun: false,
    },
    consecutiveIneffective: backoff.consecutiveIneffective,
    stopped: undefined,
  };
  state.actions.push({
    at: at.t,
    stats: decision.stats,
    pods: decision.pods,
    cooldownMs: backoff.cooldownMs,
  });
}

function firingTime(
  episodes: readonly Episode[],
  range: { fromMs: number; endMs: number },
  stepMs: number,
): number {
  let total = 0;
  for (const e of episodes) {
    const end = Math.min(e.resolvedAt ?? range.endMs + stepMs, range.endMs + stepMs);
    total += Math.max(0, end - Math.max(e.firingAt, range.fromMs));
  }
  return total;
}

/**
 * Simulates one threshold over a Deployment's history: the rule (for both the alert and the
 * service's re-check, which must agree with it) and the service at each notification, from
 * `fromMs` on. Steps before `fromMs` only warm up the rule's `for:` and the pods' ages.
 */
export function simulateThreshold(
  history: DeploymentHistory,
  stats: StepStats,
  models: { rule: RuleModel; service: ServiceModel; guardAt?: GuardAt },
  fromMs: number,
): ThresholdResult {
  const { timeline } = history;
  const { rule, service } = models;
  const range = { fromMs, endMs: timeline.startMs + (timeline.length - 1) * timeline.stepMs };
  const { episodes, aboveMs } = simulateRule(stats, timeline, rule, fromMs);
  const context = { ...service, first: firstSamples(history), guardAt: models.guardAt };
  const run = (ruleAsServed: RuleModel) =>
    serveNotifications(history, { episodes, rule: ruleAsServed, range }, context);
  const { state, notifications } = run(rule);
  const ungated = run({ ...rule, minImprovement: 0 }).state.actions.length;
  return {
    threshold: rule.threshold,
    measure: rule.measure ?? 'stddev',
    episodes,
    aboveMs,
    firingMs: firingTime(episodes, range, timeline.stepMs),
    notifications,
    actions: state.actions,
    skipped: state.skipped,
    ...(models.guardAt ? { heldBack: state.heldBack } : {}),
    removedByImprovementGate: Math.max(0, ungated - state.actions.length),
  };
}

/** The service at each notification of the episodes, from a fresh state. */
function serveNotifications(
  history: DeploymentHistory,
  alerts: { episodes: Episode[]; rule: RuleModel; range: { fromMs: number; endMs: number } },
  context: ServiceModel & { first: Map<string, number>; guardAt?: GuardAt },
): { state: ServiceState; notifications: number } {
  const state: ServiceState = { record: undefined, actions: [], skipped: {}, heldBack: [] };
  let notifications = 0;
  for (const episode of alerts.episodes) {
    for (const t of notificationTimes(episode, context.repeatIntervalMs, alerts.range)) {
      notifications++;
      handleNotification(history, { t, episode, rule: alerts.rule }, context, state);
    }
  }
  return { state, notifications };
}
