import { describe, expect, it } from '@jest/globals';
import {
  BUDGET_CLOCK_SKEW_MS,
  claimSlot,
  parseActionBudget,
  releaseSlot,
  type BudgetEntry,
} from '../../src/core/budget.js';

const HOUR = 3_600_000;
const NOW = new Date('2026-11-30T12:00:00.000Z');
const budget = { limit: 3, windowMs: HOUR, text: '3/1h' };
const entry = (id: string, agoMs: number, dryRun = false): BudgetEntry => ({
  id,
  at: new Date(NOW.getTime() - agoMs),
  deployment: `payments/${id}`,
  dryRun,
});
const claim = entry('new', 0);

describe('parseActionBudget', () => {
  it.each([
    ['20/1h', { limit: 20, windowMs: HOUR, text: '20/1h' }],
    ['5/30m', { limit: 5, windowMs: 30 * 60_000, text: '5/30m' }],
    [' 1 / 90s ', { limit: 1, windowMs: 90_000, text: '1/90s' }],
    ['off', undefined],
  ])('%j parses to %j', (text, expected) => {
    expect(parseActionBudget(text)).toEqual(expected);
  });

  it.each(['20', '0/1h', '501/1h', '-1/1h', '20/', '20/1x', '20/500ms', 'x/1h', 'none', ''])(
    'rejects %j with what is expected',
    (text) => {
      expect(() => parseActionBudget(text)).toThrow(/expected N\/DURATION .* or off/);
    },
  );
});

describe('claimSlot', () => {
  it('when the window is empty, then the claim is granted and limit - 1 remain', () => {
    expect(claimSlot([], budget, claim)).toEqual({ granted: true, entries: [claim], remaining: 2 });
  });

  it('when one slot is left, then it is granted and 0 remain', () => {
    const entries = [entry('a', 10), entry('b', 20)];

    expect(claimSlot(entries, budget, claim)).toMatchObject({ granted: true, remaining: 0 });
  });

  it('when the window is full, then refused, saying when the oldest action stops counting', () => {
    const entries = [entry('a', 10 * 60_000), entry('b', 20 * 60_000), entry('c', 30 * 60_000)];

    expect(claimSlot(entries, budget, claim)).toEqual({
      granted: false,
      remaining: 0,
      used: 3,
      freesAt: new Date(NOW.getTime() - 30 * 60_000 + HOUR + BUDGET_CLOCK_SKEW_MS),
    });
  });

  it('when dry-run actions fill the window, then they count like live ones', () => {
    const entries = [entry('a', 1, true), entry('b', 2, true), entry('c', 3, true)];

    expect(claimSlot(entries, budget, claim).granted).toBe(false);
  });

  it('when actions are older than the window and the skew tolerated, then they no longer count and are dropped', () => {
    const past = HOUR + BUDGET_CLOCK_SKEW_MS;
    const entries = [entry('old1', past), entry('old2', 2 * HOUR), entry('a', past - 1)];

    expect(claimSlot(entries, budget, claim)).toEqual({
      granted: true,
      entries: [entry('a', past - 1), claim],
      remaining: 1,
    });
  });

  it('when the writer’s clock is 10 min behind ours, then its action still counts until a whole window has passed by its clock too', () => {
    const full = { limit: 1, windowMs: HOUR, text: '1/1h' };
    // Written 55 minutes ago in truth, stamped by a clock 10 minutes behind: 65 minutes old here.
    const written = entry('a', 65 * 60_000);

    expect(claimSlot([written], full, claim)).toMatchObject({ granted: false, used: 1 });
  });

  it('when the window is shorter than the skew tolerated, then an action counts for at most two windows', () => {
    const short = { limit: 1, windowMs: 90_000, text: '1/90s' };

    expect(claimSlot([entry('a', 179_000)], short, claim).granted).toBe(false);
    expect(claimSlot([entry('a', 180_000)], short, claim).granted).toBe(true);
  });
});

describe('releaseSlot', () => {
  it('removes only the claim with that id', () => {
    expect(releaseSlot([entry('a', 1), entry('b', 2)], 'a')).toEqual([entry('b', 2)]);
  });
});
