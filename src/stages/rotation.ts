import type { Logger } from '../adapters/logger.js';
import { nextBackoff, type EffectPolicy } from '../core/effect.js';
import { GUARD_ANNOTATION } from '../core/guard.js';
import {
  claimed,
  ended,
  inProgress,
  nextRotationStep,
  released,
  type Rotation,
  type RotationFacts,
  type RotationNext,
  type RotationProgress,
} from '../core/rotation.js';
import type { Scope } from '../core/scope.js';
import type { TargetAlert } from '../core/targets.js';
import type { ChosenPod, DeploymentFacts, PodFacts, Stats } from '../core/types.js';
import type { Metrics } from '../metrics.js';
import type {
  AutoscalerSource,
  Clock,
  Cluster,
  CooldownEntry,
  CooldownRecord,
  CooldownStart,
  CooldownStore,
  GuardSource,
} from '../ports.js';
import type { PodResult, TargetReport } from '../report.js';
import { anyRemoved, removePods } from './act.js';
import { recordEvent } from './events.js';
import { stopMessage } from './backoff.js';
import { checkScaling } from './autoscaler.js';
import { checkGuards } from './guard.js';

/** ROTATION / ROTATION_TIMEOUT. */
export interface RotationSettings {
  mode: Rotation;
  timeoutMs: number;
}

/** What an action removes now, and (one by one) the rotation stored with its Lease. */
export interface FirstStep {
  pods: ChosenPod[];
  progress: RotationProgress | undefined;
}

/**
 * Splits an action by its rotation. `together` (and a dry run, which removes nothing, so no
 * replacement would ever come) removes both pods now; `one-by-one` removes the hottest now and
 * stores the coldest, with what step 2 must find, in the progress.
 */
export function planFirstStep(
  chosen: { stats: Stats; pods: ChosenPod[]; policy: { rotation: Rotation } },
  context: {
    target: TargetAlert;
    known: readonly PodFacts[];
    now: Date;
    timeoutMs: number;
    dryRun: boolean;
  },
): FirstStep {
  const first = chosen.pods.find((p) => p.role === 'highest');
  const next = chosen.pods.find((p) => p.role === 'lowest');
  if (chosen.policy.rotation !== 'one-by-one' || context.dryRun || !first || !next) {
    return { pods: chosen.pods, progress: undefined };
  }
  const { now, target } = context;
  const pod = ({ name, uid, cpu }: ChosenPod) => ({ name, uid, cpu });
  return {
    pods: [first],
    progress: {
      step: 'waiting',
      first: pod(first),
      next: pod(next),
      known: context.known.map((p) => p.uid),
      startedAt: now,
      deadline: new Date(now.getTime() + context.timeoutMs),
      alertname: target.alertname,
      guard: target.annotations[GUARD_ANNOTATION]?.trim() || undefined,
      stats: chosen.stats,
    },
  };
}

/** The report of a one-by-one action: `rotation: 1 of 2`, naming the pod that follows. */
export function withRotation(
  report: TargetReport,
  chosen: { pods: readonly ChosenPod[]; policy: { rotation: Rotation } },
  progress: RotationProgress | undefined,
): TargetReport {
  if (chosen.policy.rotation !== 'one-by-one') return report;
  const next = chosen.pods.find((p) => p.role === 'lowest');
  const first = chosen.pods.find((p) => p.role === 'highest');
  if (!progress) {
    // A dry run or a replay that observes: both pods are shown, in the order they would go.
    const order = `one-by-one, ${first?.name} first, then ${next?.name} once its replacement is Ready`;
    return { ...report, detail: `${report.detail}; rotation: ${order}` };
  }
  return {
    ...report,
    rotation: { step: 1, of: 2, next: progress.next.name, until: progress.deadline.toISOString() },
    detail: `${report.detail}; rotation: 1 of 2, ${progress.next.name} follows once the replacement of ${progress.first.name} is Ready (until ${progress.deadline.toISOString()})`,
  };
}

/** The stored state without its version: the base of the next write. */
function unversioned(record: CooldownRecord): CooldownStart {
  const rest: Partial<CooldownRecord> = { ...record };
  delete rest.version;
  return rest as CooldownStart;
}

/**
 * After step 1: when the first pod was not removed (a PodDisruptionBudget refused, it was gone,
 * the API failed), there is nothing to follow. The progress written with the Lease is taken back
 * (compare-and-swap); if that write loses, step 2 still finds the first pod there and ends.
 */
export async function afterFirstStep(
  report: TargetReport,
  deployment: DeploymentFacts,
  progress: RotationProgress,
  deps: { cooldown: CooldownStore },
): Promise<RotationProgress | undefined> {
  if (anyRemoved(report.pods ?? [])) return progress;
  const record = await deps.cooldown.read(deployment);
  if (record?.rotation?.startedAt.getTime() === progress.startedAt.getTime()) {
    await deps.cooldown.start(deployment, record, { ...unversioned(record), rotation: undefined });
  }
  return undefined;
}

/**
 * What the driver of step 2 needs. It reads the Deployment with `readDeployment` and lists the
 * pods (never from a cache): step 2 is decided on the API server's facts.
 */
export interface RotationDeps {
  cluster: Cluster;
  cooldown: CooldownStore;
  guards: GuardSource;
  /** HorizontalPodAutoscalers; none are considered when absent (the demo). */
  autoscalers?: AutoscalerSource;
  telemetry: Metrics;
  logger: Logger;
  clock: Clock;
  identity: string;
  settings: {
    action: 'evict' | 'delete';
    guardQuery: string | undefined;
    effect: EffectPolicy;
    /** DRY_RUN on between the steps: the rotation ends, nothing more is removed. */
    dryRun: boolean;
    scope: Scope;
  };
}

/** How often the driver looks at the rotations between their steps. */
export const ROTATION_CHECK_MS = 5000;

/**
 * Finishes one-by-one rotations, whoever started them: every `intervalMs` it lists the
 * cooldown Leases (the watch cache, in the service), and for each rotation between its steps
 * reads the facts from the API server and takes the next step. Every change of the progress is
 * a compare-and-swap on the Lease, so of the replicas that try, exactly one performs step 2.
 */
export class RotationDriver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly deps: RotationDeps,
    private readonly intervalMs = ROTATION_CHECK_MS,
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over the rotations in progress; errors are logged, the next pass tries again. */
  tick(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<void> {
    let entries: CooldownEntry[];
    try {
      entries = await this.deps.cooldown.list({ rotating: true });
    } catch (error) {
      this.deps.logger.warn('rotation: cannot list the Leases', { error: String(error) });
      return;
    }
    for (const entry of entries) {
      if (!inProgress(entry.record.rotation)) continue;
      try {
        await this.advance(entry, entry.record.rotation);
      } catch (error) {
        this.deps.logger.warn('rotation: step 2 could not be decided; trying again', {
          ...entry.target,
          error: (error as Error).message,
        });
      }
    }
  }

  private async advance(entry: CooldownEntry, progress: RotationProgress): Promise<void> {
    const { deps } = this;
    const now = deps.clock.now();
    const facts = await this.factsOf(entry, now);
    const { deployment } = facts;
    let step = nextRotationStep(progress, facts, now, deps.settings);
    if (step.next === 'check-guards') {
      const held = await checkGuards(guardTarget(entry, progress), deps.settings.guardQuery, deps);
      step = nextRotationStep(
        progress,
        { ...facts, guard: held ? { held: held.detail } : 'clear' },
        now,
        deps.settings,
      );
    }
    const owner = deployment ?? ownerOf(entry);
    if (step.next === 'remove') await this.removeNext(owner, entry.record, progress);
    else if (step.next === 'end') await this.end(owner, entry.record, step, now);
    else if (step.next === 'wait') {
      deps.logger.debug('rotation: step 2 waits', { ...entry.target, waitingFor: step.waitingFor });
    }
  }

  /**
   * The facts step 2 is decided on. The cache may say skip; only the API server may say act:
   * the Deployment and its pods are read fresh. The autoscalers come from their watch cache,
   * where they can only hold step 2 back.
   */
  private async factsOf(entry: CooldownEntry, now: Date): Promise<RotationFacts> {
    const { deps } = this;
    const found = await deps.cluster.readDeployment(entry.target);
    const deployment = found?.uid === entry.deploymentUid ? found : undefined;
    if (!deployment) return { deployment, pods: [], guard: 'unchecked' };
    const pods = await deps.cluster.listPods(deployment);
    const scaling = (await checkScaling(deployment, now, deps))?.detail;
    return { deployment, pods, guard: 'unchecked', scaling };
  }

  /** Claims step 2 on the Lease, removes the coldest pod, and records how it went. */
  private async removeNext(
    deployment: DeploymentFacts,
    record: CooldownRecord,
    progress: RotationProgress,
  ): Promise<void> {
    const { deps } = this;
    const now = deps.clock.now();
    const claim = claimed(progress, deps.identity, now);
    if (
      !(await deps.cooldown.start(deployment, record, { ...unversioned(record), rotation: claim }))
    ) {
      return; // another replica claimed it (or changed the Lease): it goes on from there
    }
    const mine = await deps.cooldown.read(deployment);
    const [result] = await removePods(
      deployment,
      { stats: progress.stats, pods: [{ ...progress.next, role: 'lowest' }] },
      // nextRotationStep ends the rotation under DRY_RUN, so this is false here; passed all the
      // same, so the one removal choke point sees the setting as it is.
      {
        action: deps.settings.action,
        dryRun: deps.settings.dryRun,
        now,
        sayOnceFor: progress.startedAt,
      },
      deps,
    );
    if (mine?.rotation?.claim?.holder === deps.identity) {
      await this.settle(deployment, mine, claim, result?.result);
    }
  }

  /** Records how step 2's removal went: done, the pod was gone, or (refused, failed) retry. */
  private async settle(
    deployment: DeploymentFacts,
    mine: CooldownRecord,
    claim: RotationProgress,
    outcome: PodResult | undefined,
  ): Promise<void> {
    const { deps } = this;
    const progress = claim;
    const now = deps.clock.now();
    if (outcome === 'evicted' || outcome === 'deleted') {
      await this.finish(deployment, mine, claim, now);
    } else if (outcome === 'gone') {
      const detail = `${progress.next.name} is gone or replaced: the rotation ends with one removal`;
      await this.end(deployment, mine, { next: 'end', end: 'next-gone', detail }, now);
    } else {
      const blocked =
        outcome === 'pdb-blocked'
          ? `a PodDisruptionBudget refused the eviction of ${progress.next.name}`
          : undefined;
      await deps.cooldown.start(deployment, mine, {
        ...unversioned(mine),
        rotation: released(claim, blocked),
      });
    }
  }

  /** Step 2 is done: the action's last step. Its cooldown and its judgement start from here. */
  private async finish(
    deployment: DeploymentFacts,
    record: CooldownRecord,
    progress: RotationProgress,
    now: Date,
  ): Promise<void> {
    const { deps } = this;
    const done = (current: CooldownRecord): CooldownStart => ({
      ...unversioned(current),
      startedAt: now,
      lastAction: current.lastAction && {
        ...current.lastAction,
        at: now,
        pods: [progress.first.name, progress.next.name],
      },
      rotation: ended(progress, 'done', now),
    });
    if (!(await deps.cooldown.start(deployment, record, done(record)))) {
      // The Lease changed under our claim (a person's resume, say): the pod is gone all the
      // same, so the record says so once more on the version there is now, if still ours.
      const current = await deps.cooldown.read(deployment);
      if (current?.rotation?.claim?.holder !== deps.identity) return;
      await deps.cooldown.start(deployment, current, done(current));
    }
    deps.telemetry.rotations.inc({ result: 'done' });
    deps.logger.info('rotation: 2 of 2 done', {
      namespace: deployment.namespace,
      deployment: deployment.name,
      pods: [progress.first.name, progress.next.name],
    });
  }

  /**
   * Ends a rotation without step 2. A stall (the replacement was not Ready in time) counts as
   * an ineffective action now: it is not judged again later, and it lengthens the cooldown.
   */
  private async end(
    deployment: DeploymentFacts,
    record: CooldownRecord,
    step: Extract<RotationNext, { next: 'end' }>,
    now: Date,
  ): Promise<void> {
    const { deps } = this;
    const progress = ended(record.rotation!, step.end, now);
    const stalled = step.end === 'stalled';
    const backoff = nextBackoff(record.consecutiveIneffective, 'ineffective', deps.settings.effect);
    const next: CooldownStart = stalled
      ? {
          ...unversioned(record),
          startedAt: now,
          durationMs: backoff.cooldownMs,
          consecutiveIneffective: backoff.consecutiveIneffective,
          stopped: backoff.stopped ? stopMessage(backoff, deps.settings.effect) : record.stopped,
          rotation: progress,
        }
      : { ...unversioned(record), rotation: progress };
    if (!(await deps.cooldown.start(deployment, record, next))) return;
    deps.telemetry.rotations.inc({ result: step.end });
    if (stalled) deps.telemetry.actionsJudged.inc({ effect: 'ineffective' });
    deps.logger.info('rotation: ended', {
      namespace: deployment.namespace,
      deployment: deployment.name,
      end: step.end,
      detail: step.detail,
    });
    await recordEvent(
      {
        deployment,
        type: stalled ? 'Warning' : 'Normal',
        reason: stalled ? 'RebalanceStalled' : 'RebalanceRotationEnded',
        action: 'Rotate',
        message: `Rotation ended after 1 of 2 (${step.end}): ${step.detail}`,
        at: now,
      },
      deps,
    );
  }
}

/** The rule's own guard, as the alert carried it at step 1, for checkGuards. */
function guardTarget(entry: CooldownEntry, progress: RotationProgress): TargetAlert {
  return {
    ...entry.target,
    fingerprint: '',
    alertname: progress.alertname,
    annotations: progress.guard ? { [GUARD_ANNOTATION]: progress.guard } : {},
  };
}

/** The Deployment a Lease was written for, when it cannot be read any more. */
function ownerOf(entry: CooldownEntry): DeploymentFacts {
  return {
    namespace: entry.target.namespace,
    name: entry.target.deployment,
    uid: entry.deploymentUid,
    optedOut: false,
    rolloutInProgress: false,
    selector: {},
  };
}
