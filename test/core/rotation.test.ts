import { describe, expect, it } from '@jest/globals';
import {
  CLAIM_TIMEOUT_MS,
  FIRST_REMOVAL_GRACE_MS,
  gateRotation,
  nextRotationStep,
  type RotationFacts,
  type RotationProgress,
  type StepSettings,
} from '../../src/core/rotation.js';
import { UNSCOPED } from '../../src/core/scope.js';
import type { DeploymentFacts } from '../../src/core/types.js';
import { buildDeploymentFacts, buildPod } from '../support/builders.js';

const STARTED = new Date('2026-12-01T10:00:00.000Z');
const MINUTE = 60_000;
const at = (ms: number) => new Date(STARTED.getTime() + ms);

const PROGRESS: RotationProgress = {
  step: 'waiting',
  first: { name: 'api-hot', uid: 'uid-api-hot', cpu: 1.8 },
  next: { name: 'api-cold', uid: 'uid-api-cold', cpu: 0.05 },
  known: ['uid-api-hot', 'uid-api-a', 'uid-api-cold'],
  startedAt: STARTED,
  deadline: at(10 * MINUTE),
  alertname: 'DeploymentCPUImbalance',
  stats: { count: 3, mean: 0.8, stddev: 0.7, min: 0.05, max: 1.8 },
};

const cold = buildPod({ name: 'api-cold' });
const other = buildPod({ name: 'api-a' });
const replacement = buildPod({ name: 'api-new' });
const notReady = buildPod({ name: 'api-new', ready: false });
const hot = buildPod({ name: 'api-hot' });

/** The API server's copy of payments/api: 3 replicas desired, `available` of them available. */
const api = (available = 3, overrides: Partial<DeploymentFacts> = {}) =>
  buildDeploymentFacts({ desiredReplicas: 3, availableReplicas: available, ...overrides });

/** After step 1: the first pod gone, its replacement Ready, every replica available. */
const RECOVERED: RotationFacts = {
  deployment: api(),
  pods: [other, cold, replacement],
  guard: 'unchecked',
};

describe('nextRotationStep', () => {
  it.each<[string, object, Partial<RotationFacts>, number]>([
    [
      'the replacement is Running but not Ready',
      { next: 'wait', waitingFor: 'replacement' },
      { pods: [other, cold, notReady] },
      MINUTE,
    ],
    [
      'no replacement exists yet',
      { next: 'wait', waitingFor: 'replacement' },
      { pods: [other, cold] },
      MINUTE,
    ],
    [
      'the replacement is Ready but a replica is still unavailable',
      { next: 'wait', waitingFor: 'replicas', detail: '2 of 3 replicas available' },
      { deployment: api(2) },
      MINUTE,
    ],
    [
      'the cluster has recovered and the guards are not evaluated yet',
      { next: 'check-guards' },
      {},
      MINUTE,
    ],
    [
      'the cluster has recovered and a guard holds',
      { next: 'wait', waitingFor: 'guard', detail: 'GUARD_QUERY holds' },
      { guard: { held: 'GUARD_QUERY holds' } },
      MINUTE,
    ],
    [
      'the cluster has recovered and no guard holds',
      { next: 'remove', pod: PROGRESS.next },
      { guard: 'clear' },
      MINUTE,
    ],
    [
      'the cluster has recovered but an autoscaler is scaling the Deployment (the guards clear)',
      {
        next: 'wait',
        waitingFor: 'autoscaler',
        detail: 'HorizontalPodAutoscaler api-hpa is scaling',
      },
      { guard: 'clear', scaling: 'HorizontalPodAutoscaler api-hpa is scaling' },
      MINUTE,
    ],
    [
      'the coldest pod is gone',
      { next: 'end', end: 'next-gone' },
      { pods: [other, replacement] },
      MINUTE,
    ],
    [
      'a pod of the same name but another uid replaced the coldest',
      { next: 'end', end: 'next-gone' },
      { pods: [other, replacement, buildPod({ name: 'api-cold', uid: 'uid-other' })] },
      MINUTE,
    ],
    [
      'the coldest pod is terminating',
      { next: 'end', end: 'next-gone' },
      { pods: [other, replacement, { ...cold, terminating: true }] },
      MINUTE,
    ],
    [
      'the Deployment is gone or recreated',
      { next: 'end', end: 'deployment-gone' },
      { deployment: undefined },
      MINUTE,
    ],
    [
      'the Deployment opted out',
      { next: 'end', end: 'opted-out' },
      { deployment: api(3, { optedOut: true }) },
      MINUTE,
    ],
    [
      'the first pod is still there, not terminating, past the grace',
      { next: 'end', end: 'first-kept' },
      { pods: [other, cold, buildPod({ name: 'api-hot' })] },
      FIRST_REMOVAL_GRACE_MS,
    ],
    [
      'the first pod is still there, not terminating, within the grace, and a newcomer is Ready',
      {
        next: 'wait',
        waitingFor: 'replacement',
        detail: 'api-hot is still there and not terminating',
      },
      { pods: [other, cold, replacement, hot] },
      FIRST_REMOVAL_GRACE_MS / 2,
    ],
    [
      'the first pod is terminating and its replacement is Ready',
      { next: 'check-guards' },
      { pods: [other, cold, replacement, { ...hot, terminating: true }] },
      MINUTE,
    ],
    [
      'a rollout is reported while the replacement is not Ready yet (step 1 alone makes it so)',
      { next: 'wait', waitingFor: 'replacement' },
      { deployment: api(2, { rolloutInProgress: true }), pods: [other, cold, notReady] },
      MINUTE,
    ],
    [
      'a rollout is still reported once the cluster has recovered',
      { next: 'end', end: 'rollout-in-progress' },
      { deployment: api(3, { rolloutInProgress: true }) },
      MINUTE,
    ],
    [
      'its pods became system-critical',
      { next: 'end', end: 'out-of-scope', detail: expect.stringMatching(/system-critical/) },
      { deployment: api(3, { priorityClassName: 'system-cluster-critical' }) },
      MINUTE,
    ],
    [
      'the deadline passed while the replacement was not Ready',
      { next: 'end', end: 'stalled' },
      { pods: [other, cold, notReady] },
      10 * MINUTE + 1,
    ],
    [
      'the deadline passed while replicas were unavailable',
      { next: 'end', end: 'stalled' },
      { deployment: api(2) },
      10 * MINUTE + 1,
    ],
    [
      'the deadline passed while an autoscaler was scaling the Deployment',
      { next: 'end', end: 'timed-out' },
      { guard: 'clear', scaling: 'HorizontalPodAutoscaler api-hpa is scaling' },
      10 * MINUTE + 1,
    ],
    [
      'the deadline passed while a guard held',
      { next: 'end', end: 'timed-out' },
      { guard: { held: 'GUARD_QUERY holds' } },
      10 * MINUTE + 1,
    ],
    [
      'the deadline passed with nothing to wait for (no replica came in time)',
      { next: 'end', end: 'timed-out' },
      { guard: 'clear' },
      10 * MINUTE + 1,
    ],
  ])('when %s, then %j', (_name, expected, facts, afterMs) => {
    expect(nextRotationStep(PROGRESS, { ...RECOVERED, ...facts }, at(afterMs))).toMatchObject(
      expected,
    );
  });

  it('when another replica claimed step 2 moments ago, then it waits for that replica', () => {
    const claimed = {
      ...PROGRESS,
      step: 'removing' as const,
      claim: { holder: 'b', at: at(MINUTE) },
    };

    expect(
      nextRotationStep(claimed, { ...RECOVERED, guard: 'clear' }, at(MINUTE + 1000)),
    ).toMatchObject({
      next: 'wait',
      waitingFor: 'another-replica',
    });
  });

  it('when a claim is older than the claim timeout (its replica died), then step 2 is decided again', () => {
    const claimed = {
      ...PROGRESS,
      step: 'removing' as const,
      claim: { holder: 'b', at: at(MINUTE) },
    };

    expect(
      nextRotationStep(claimed, { ...RECOVERED, guard: 'clear' }, at(MINUTE + CLAIM_TIMEOUT_MS)),
    ).toEqual({ next: 'remove', pod: PROGRESS.next });
  });
});

describe('nextRotationStep with the service settings', () => {
  const settings = (overrides: Partial<StepSettings> = {}): StepSettings => ({
    dryRun: false,
    scope: UNSCOPED,
    ...overrides,
  });
  const ready = { ...RECOVERED, guard: 'clear' as const };

  it('when nothing is set, then step 2 goes ahead', () => {
    expect(nextRotationStep(PROGRESS, ready, at(MINUTE), settings())).toEqual({
      next: 'remove',
      pod: PROGRESS.next,
    });
  });

  it('when DRY_RUN was turned on between the steps, then the rotation ends and nothing more is removed', () => {
    expect(nextRotationStep(PROGRESS, ready, at(MINUTE), settings({ dryRun: true }))).toMatchObject(
      { next: 'end', end: 'dry-run', detail: expect.stringMatching(/api-cold is kept/) },
    );
  });

  it.each<[string, Partial<StepSettings['scope']>, RegExp]>([
    [
      'REQUIRE_OPT_IN is true and the opt-in annotation is gone',
      { requireOptIn: true },
      /REQUIRE_OPT_IN/,
    ],
    [
      'its namespace was excluded',
      { excludeNamespaces: new Set(['payments']) },
      /EXCLUDE_NAMESPACES/,
    ],
  ])('when %s, then the rotation ends out-of-scope', (_name, scope, detail) => {
    const step = nextRotationStep(
      PROGRESS,
      { ...ready, deployment: api(3, { optedIn: false }) },
      at(MINUTE),
      settings({ scope: { ...UNSCOPED, ...scope } }),
    );

    expect(step).toMatchObject({
      next: 'end',
      end: 'out-of-scope',
      detail: expect.stringMatching(detail),
    });
  });
});

describe('gateRotation', () => {
  it('when a rotation waits or is being finished, then new actions are held back as cooldown, naming both pods', () => {
    expect(gateRotation({ rotation: PROGRESS }, at(MINUTE))).toMatchObject({
      reason: 'cooldown',
      detail: expect.stringMatching(/rotation 1 of 2 in progress: api-cold follows api-hot/),
    });
    expect(gateRotation({ rotation: { ...PROGRESS, step: 'removing' } }, at(MINUTE))).toBeDefined();
  });

  it('when a rotation was left waiting past its deadline (no service ended it), then it holds nothing back', () => {
    expect(
      gateRotation({ rotation: PROGRESS }, at(10 * MINUTE + CLAIM_TIMEOUT_MS + 1)),
    ).toBeUndefined();
  });

  it('when the rotation ended or there is none, then nothing is held back', () => {
    expect(
      gateRotation({ rotation: { ...PROGRESS, step: 'ended', end: 'done' } }, at(MINUTE)),
    ).toBeUndefined();
    expect(gateRotation({}, at(MINUTE))).toBeUndefined();
    expect(gateRotation(undefined, at(MINUTE))).toBeUndefined();
  });
});
