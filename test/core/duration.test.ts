import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

describe('parseDuration', () => {
  it.each([
    ['100ms', 100],
    ['30s', 30_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['0s', 0],
    ['90s', 90_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['an empty string', ''],
    ['a number without a unit', '15'],
    ['a unit without a number', 'm'],
    ['a fraction', '1.5h'],
    ['a negative duration', '-5m'],
    ['a space inside', '15 m'],
    ['a leading space', ' 15m'],
    ['a trailing space', '15m '],
    ['an upper-case unit', '15M'],
    ['an unknown unit', '3x'],
    ['a trailing number', '1h30'],
    ['prose', 'ten minutes'],
    ['units out of order, which Prometheus rejects', '30m1h'],
    ['a repeated unit', '1m1m'],
  ])('returns undefined for %s (%p)', (_case, text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [300_000, '5m'],
    [90_000, '90s'],
    [3_600_000, '1h'],
    [5_400_000, '90m'],
    [86_400_000, '1d'],
    [172_800_000, '2d'],
    [1_500, '1500ms'],
    [1, '1ms'],
    [0, '0ms'],
  ])('writes %d ms as %s, in the largest unit that divides it', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('writes what parseDuration reads back to the same number of milliseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });

  it('writes whole minutes as a PromQL range selector accepts them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), (minutes) => {
        expect(formatDuration(minutes * 60_000)).toMatch(/^\d+[mhd]$/);
      }),
    );
  });
});
