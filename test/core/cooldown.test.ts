import { describe, expect, it } from '@jest/globals';
import { cooldownEnds, gateCooldown, gateWindow } from '../../src/core/cooldown.js';
import { parseActiveWindow } from '../../src/core/window.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const FIFTEEN_MINUTES = 15 * 60_000;
const startedAgo = (ms: number) => ({
  startedAt: new Date(NOW.getTime() - ms),
  durationMs: FIFTEEN_MINUTES,
});

describe('gateCooldown', () => {
  it('ends the cooldown one duration after the action started', () => {
    expect(cooldownEnds(startedAgo(5 * 60_000))).toEqual(new Date('2026-11-30T12:10:00.000Z'));
  });

  it.each([
    ['the action started 5 minutes ago', startedAgo(5 * 60_000)],
    ['the cooldown ends 1 ms from now', startedAgo(FIFTEEN_MINUTES - 1)],
    ['the action started just now', startedAgo(0)],
    ['the record starts in the future (clock skew)', startedAgo(-60_000)],
  ])('stops a target when %s', (_case, record) => {
    expect(gateCooldown(record, NOW)).toEqual({
      reason: 'cooldown',
      detail: `in cooldown until ${cooldownEnds(record).toISOString()}`,
    });
  });

  it.each([
    ['the Deployment was never acted on', undefined],
    ['the cooldown ends exactly now', startedAgo(FIFTEEN_MINUTES)],
    ['the cooldown ended an hour ago', startedAgo(FIFTEEN_MINUTES + 3_600_000)],
    ['the cooldown has length 0', { startedAt: NOW, durationMs: 0 }],
  ])('lets a target through when %s', (_case, record) => {
    expect(gateCooldown(record, NOW)).toBeUndefined();
  });

  it('when the skips of two Deployments alternate, then each names its own cooldown end (the repeated detail is remembered, not reused)', () => {
    const [a, b] = [startedAgo(60_000), startedAgo(120_000)];

    const details = [a, b, a, b].map((record) => gateCooldown(record, NOW)?.detail);

    expect(details).toEqual([
      'in cooldown until 2026-11-30T12:14:00.000Z',
      'in cooldown until 2026-11-30T12:13:00.000Z',
      'in cooldown until 2026-11-30T12:14:00.000Z',
      'in cooldown until 2026-11-30T12:13:00.000Z',
    ]);
  });
});

describe('cooldownEnds with the time this replica observed the record (clock skew)', () => {
  const MINUTE = 60_000;
  const at = (ms: number) => new Date(NOW.getTime() + ms);

  it.each([
    [
      'seen when written, the writer 10 min behind: the whole duration from when it was seen',
      at(-10 * MINUTE),
      at(0),
      at(15 * MINUTE),
    ],
    [
      "the writer 10 min ahead: the writer's end, which is later",
      at(10 * MINUTE),
      at(0),
      at(25 * MINUTE),
    ],
    [
      'first seen long after it was written (a restart): at most one more duration',
      at(-2 * 60 * MINUTE),
      at(0),
      at(-2 * 60 * MINUTE + 30 * MINUTE),
    ],
    [
      "never observed (no store that tracks it): the writer's end",
      at(0),
      undefined,
      at(15 * MINUTE),
    ],
  ])('%s', (_case, startedAt, observedAt, ends) => {
    expect(cooldownEnds({ startedAt, durationMs: FIFTEEN_MINUTES, observedAt })).toEqual(ends);
  });

  it('when the writer is 10 min behind and this replica saw the change, then the gate still holds past the writer’s end', () => {
    const record = { startedAt: at(-10 * MINUTE), durationMs: FIFTEEN_MINUTES, observedAt: at(0) };

    // By the writer's clock the cooldown ended a minute ago (at +5 min); observed, it lasts to +15.
    expect(gateCooldown(record, at(6 * MINUTE))).toMatchObject({ reason: 'cooldown' });
    expect(gateCooldown(record, at(14 * MINUTE))).toMatchObject({ reason: 'cooldown' });
    expect(gateCooldown(record, at(15 * MINUTE))).toBeUndefined();
  });
});

describe('gateWindow', () => {
  // 2026-11-30 is a Monday; Berlin is UTC+1 in November.
  const window = parseActiveWindow('Mon-Fri 09:00-17:00 Europe/Berlin');

  it('lets every target through when no window is configured', () => {
    expect(gateWindow(undefined, new Date('2026-12-06T03:00:00Z'))).toBeUndefined();
  });

  it('lets a target through inside the window', () => {
    expect(gateWindow(window, new Date('2026-11-30T08:00:00Z'))).toBeUndefined();
  });

  it.each([
    ['before it opens', '2026-11-30T07:59:00Z'],
    ['at the closing minute', '2026-11-30T16:00:00Z'],
    ['on a Saturday', '2026-12-05T11:00:00Z'],
  ])('stops a target %s, naming the window', (_case, instant) => {
    expect(gateWindow(window, new Date(instant))).toEqual({
      reason: 'outside-window',
      detail: 'outside ACTIVE_WINDOW "Mon-Fri 09:00-17:00 Europe/Berlin"',
    });
  });
});
