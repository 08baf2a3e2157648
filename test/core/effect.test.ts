import { describe, expect, it } from '@jest/globals';
import { gateStopped, judgeAction, nextBackoff, type EffectPolicy } from '../../src/core/effect.js';

const MINUTE = 60_000;
const policy: EffectPolicy = {
  baseCooldownMs: 15 * MINUTE,
  maxCooldownMs: 24 * 60 * MINUTE,
  effectiveReduction: 0.3,
  ineffectiveLimit: 3,
};
const at = new Date('2026-11-29T10:00:00Z');
const action = { at, stddev: 0.6, dryRun: false };
const later = (minutes: number) => new Date(at.getTime() + minutes * MINUTE);

describe('judgeAction', () => {
  it.each([
    ['fell by exactly the share', 0.42, undefined, 'effective'],
    ['fell by more than the share', 0.2, undefined, 'effective'],
    ['fell by less than the share', 0.43, undefined, 'ineffective'],
    ['did not fall', 0.6, undefined, 'ineffective'],
    ['rose', 0.9, undefined, 'ineffective'],
    ['came back only after staying away a cooldown', 0.9, later(15), 'effective'],
    ['came back before a cooldown had passed', 0.9, later(14), 'ineffective'],
    ['was firing since before the action', 0.6, later(-30), 'ineffective'],
  ])('when the stddev %s, then the action is %s', (_when, stddev, alertStartedAt, effect) => {
    const judgement = judgeAction(
      action,
      { stddev, alertStartedAt, cooldownMs: 15 * MINUTE },
      policy,
    );

    expect(judgement?.effect).toBe(effect);
    expect(judgement?.ratio).toBeCloseTo(stddev / 0.6);
  });

  it.each([
    ['a dry run removed nothing', { ...action, dryRun: true }, 0.6],
    ['the stddev before is unknown', { ...action, stddev: NaN }, 0.6],
    ['the stddev before was zero', { ...action, stddev: 0 }, 0.6],
    ['the stddev now is unknown', action, NaN],
  ])('when %s, then there is nothing to judge', (_when, past, stddev) => {
    expect(
      judgeAction(past, { stddev, alertStartedAt: undefined, cooldownMs: 15 * MINUTE }, policy),
    ).toBeUndefined();
  });
});

describe('nextBackoff', () => {
  it.each([
    [0, 'ineffective', 1, 30, false],
    [1, 'ineffective', 2, 60, false],
    [2, 'ineffective', 3, 120, true],
    [2, 'effective', 0, 15, false],
    [0, undefined, 0, 15, false],
    [1, undefined, 1, 30, false],
  ] as const)(
    'from %i ineffective in a row, a judgement of %s gives %i in a row, a %i-minute cooldown, stopped: %s',
    (count, effect, next, minutes, stopped) => {
      expect(nextBackoff(count, effect, policy)).toEqual({
        consecutiveIneffective: next,
        cooldownMs: minutes * MINUTE,
        stopped,
      });
    },
  );

  it('never exceeds MAX_COOLDOWN', () => {
    const backoff = nextBackoff(10, 'ineffective', { ...policy, ineffectiveLimit: 100 });

    expect(backoff.cooldownMs).toBe(24 * 60 * MINUTE);
  });
});

describe('gateStopped', () => {
  it('lets an unmarked Deployment through and stops a marked one, saying how to resume', () => {
    expect(gateStopped(undefined, 'clear it')).toBeUndefined();
    expect(gateStopped('3 in a row', 'clear it')).toEqual({
      reason: 'ineffective',
      detail: '3 in a row; to resume: clear it',
    });
  });
});
