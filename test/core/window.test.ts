import { describe, expect, it } from '@jest/globals';
import { isInsideWindow, parseActiveWindow } from '../../src/core/window.js';

const SUN = 0;
const MON = 1;
const TUE = 2;
const WED = 3;
const THU = 4;
const FRI = 5;
const SAT = 6;

/** Whether the window given as ACTIVE_WINDOW text is open at the UTC instant given. */
const openAt = (text: string, isoUtc: string) =>
  isInsideWindow(parseActiveWindow(text), new Date(isoUtc));

describe('parseActiveWindow', () => {
  it.each([
    ['a weekday range', 'Mon-Fri 09:00-17:00 Europe/Berlin', [MON, TUE, WED, THU, FRI], 540, 1020],
    ['a list of days', 'Mon,Wed,Fri 09:00-17:00 UTC', [MON, WED, FRI], 540, 1020],
    [
      'a range that wraps over the weekend',
      'Fri-Mon 09:00-17:00 UTC',
      [FRI, SAT, SUN, MON],
      540,
      1020,
    ],
    ['a single day', 'Sun 02:00-03:00 UTC', [SUN], 120, 180],
    ['ranges and days mixed', 'Mon-Tue,Thu 09:00-17:00 UTC', [MON, TUE, THU], 540, 1020],
    ['a window crossing midnight', 'Fri 22:00-06:00 UTC', [FRI], 1320, 360],
    ['a window until the end of the day', 'Sat 08:30-24:00 UTC', [SAT], 510, 1440],
  ])('reads %s', (_case, text, days, startMinute, endMinute) => {
    const window = parseActiveWindow(text);

    expect([...window.days].sort()).toEqual([...days].sort());
    expect(window.startMinute).toBe(startMinute);
    expect(window.endMinute).toBe(endMinute);
    expect(window.text).toBe(text);
  });

  it('reads the IANA timezone', () => {
    expect(parseActiveWindow('Mon-Fri 09:00-17:00 America/New_York').timeZone).toBe(
      'America/New_York',
    );
  });

  it('tolerates spaces around the whole value', () => {
    expect(parseActiveWindow('  Mon-Fri 09:00-17:00 UTC \n').startMinute).toBe(540);
  });

  it.each([
    ['an empty value', '', /expected "<days> HH:MM-HH:MM <IANA zone>"/],
    ['no timezone', 'Mon-Fri 09:00-17:00', /expected "<days> HH:MM-HH:MM <IANA zone>"/],
    ['no days', '09:00-17:00 Europe/Berlin', /expected "<days> HH:MM-HH:MM <IANA zone>"/],
    ['a one-digit hour', 'Mon-Fri 9:00-17:00 UTC', /expected "<days> HH:MM-HH:MM <IANA zone>"/],
    ['words after the zone', 'Mon-Fri 09:00-17:00 UTC daily', /expected "<days>/],
    ['an unknown day', 'Mon-Frx 09:00-17:00 UTC', /unknown day "Frx"/],
    ['a full day name', 'Monday 09:00-17:00 UTC', /unknown day "Monday"/],
    ['an empty day in a list', 'Mon,,Fri 09:00-17:00 UTC', /unknown day ""/],
    ['a range of three days', 'Mon-Fri-Sat 09:00-17:00 UTC', /day/],
    ['an hour past 24', 'Mon-Fri 25:00-17:00 UTC', /invalid time 25:00/],
    ['minutes past 59', 'Mon-Fri 09:60-17:00 UTC', /invalid time 09:60/],
    ['a time after 24:00', 'Mon-Fri 09:00-24:01 UTC', /invalid time 24:01/],
    ['a window opening at 24:00', 'Mon 24:00-06:00 UTC', /cannot open at 24:00/],
    [
      'an unknown timezone',
      'Mon-Fri 09:00-17:00 Mars/Olympus_Mons',
      /unknown timezone "Mars\/Olympus_Mons"/,
    ],
    ['the same start and end', 'Mon-Fri 09:00-09:00 UTC', /opens and closes at the same minute/],
  ])('rejects %s with a message saying what is wrong', (_case, text, message) => {
    expect(() => parseActiveWindow(text)).toThrow(message);
  });
});

describe('isInsideWindow: Mon-Fri 09:00-17:00 Europe/Berlin', () => {
  const WINDOW = 'Mon-Fri 09:00-17:00 Europe/Berlin';

  // November is winter time in Berlin (UTC+1), June summer time (UTC+2).
  it.each([
    ['Monday 09:00 (the opening minute counts)', '2026-11-30T08:00:00Z', true],
    ['Monday 08:59:59', '2026-11-30T07:59:59Z', false],
    ['Monday 16:59:59', '2026-11-30T15:59:59Z', true],
    ['Monday 17:00 (the closing minute does not count)', '2026-11-30T16:00:00Z', false],
    ['Friday noon', '2026-12-04T11:00:00Z', true],
    ['Saturday noon', '2026-12-05T11:00:00Z', false],
    ['Sunday noon', '2026-12-06T11:00:00Z', false],
    ['Monday 09:00 in summer time (07:00 UTC)', '2026-06-15T07:00:00Z', true],
    ['Monday 08:59 in summer time (06:59 UTC)', '2026-06-15T06:59:00Z', false],
    ['Monday 17:00 in summer time (15:00 UTC)', '2026-06-15T15:00:00Z', false],
    ['Monday 16:59 in summer time (14:59 UTC)', '2026-06-15T14:59:00Z', true],
  ])('at %s (%s) the window is open: %s', (_case, instant, open) => {
    expect(openAt(WINDOW, instant)).toBe(open);
  });

  it('judges the day in the window timezone, not in UTC', () => {
    // Friday 23:30 UTC is already Saturday 00:30 in Berlin.
    expect(openAt('Sat 00:00-02:00 Europe/Berlin', '2026-12-04T23:30:00Z')).toBe(true);
    expect(openAt('Fri 23:00-24:00 Europe/Berlin', '2026-12-04T23:30:00Z')).toBe(false);
  });
});

describe('isInsideWindow on the days Berlin changes its clocks', () => {
  it.each([
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    [
      'spring: 09:00 CEST opens a Sunday window at 07:00 UTC',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-03-29T07:00:00Z',
      true,
    ],
    [
      'spring: 06:59 UTC is 08:59 CEST, still closed',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-03-29T06:59:00Z',
      false,
    ],
    [
      'spring: 15:00 UTC is 17:00 CEST, closed',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-03-29T15:00:00Z',
      false,
    ],
    [
      'spring: the week before, 07:00 UTC is 08:00 CET, closed',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-03-22T07:00:00Z',
      false,
    ],
    [
      'spring: 01:59 CET is before the skipped hour',
      'Sun 02:00-03:00 Europe/Berlin',
      '2026-03-29T00:59:00Z',
      false,
    ],
    [
      'spring: 03:00 CEST follows 01:59 CET, the skipped hour never opens',
      'Sun 02:00-03:00 Europe/Berlin',
      '2026-03-29T01:00:00Z',
      false,
    ],
    [
      'spring: a night window closes at 06:00 CEST (04:00 UTC)',
      'Sat 22:00-06:00 Europe/Berlin',
      '2026-03-29T04:00:00Z',
      false,
    ],
    [
      'spring: 05:59 CEST is still inside the night window',
      'Sat 22:00-06:00 Europe/Berlin',
      '2026-03-29T03:59:00Z',
      true,
    ],
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
    [
      'autumn: 09:00 CET opens a Sunday window at 08:00 UTC',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-10-25T08:00:00Z',
      true,
    ],
    [
      'autumn: 07:59 UTC is 08:59 CET, still closed',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-10-25T07:59:00Z',
      false,
    ],
    [
      'autumn: 16:00 UTC is 17:00 CET, closed',
      'Sun 09:00-17:00 Europe/Berlin',
      '2026-10-25T16:00:00Z',
      false,
    ],
    [
      'autumn: 02:30 CEST, the first time',
      'Sun 02:00-03:00 Europe/Berlin',
      '2026-10-25T00:30:00Z',
      true,
    ],
    [
      'autumn: 02:30 CET, the repeated hour',
      'Sun 02:00-03:00 Europe/Berlin',
      '2026-10-25T01:30:00Z',
      true,
    ],
    [
      'autumn: 03:00 CET, after the repeated hour',
      'Sun 02:00-03:00 Europe/Berlin',
      '2026-10-25T02:00:00Z',
      false,
    ],
    [
      'autumn: 01:59 CEST, before it',
      'Sun 02:00-03:00 Europe/Berlin',
      '2026-10-24T23:59:00Z',
      false,
    ],
  ])('%s', (_case, window, instant, open) => {
    expect(openAt(window, instant)).toBe(open);
  });
});

describe('isInsideWindow: a window crossing midnight counts the early morning for the day before', () => {
  // Winter time: Berlin is UTC+1. 2026-12-04 is a Friday.
  it.each([
    [
      'Fri 22:00 local, the opening minute',
      'Fri 22:00-06:00 Europe/Berlin',
      '2026-12-04T21:00:00Z',
      true,
    ],
    ['Fri 21:59 local', 'Fri 22:00-06:00 Europe/Berlin', '2026-12-04T20:59:00Z', false],
    ['Fri 23:59 local', 'Fri 22:00-06:00 Europe/Berlin', '2026-12-04T22:59:00Z', true],
    [
      'Sat 00:00 local, after the Friday opening',
      'Fri 22:00-06:00 Europe/Berlin',
      '2026-12-04T23:00:00Z',
      true,
    ],
    [
      'Sat 05:59 local, after the Friday opening',
      'Fri 22:00-06:00 Europe/Berlin',
      '2026-12-05T04:59:00Z',
      true,
    ],
    [
      'Sat 06:00 local, the closing minute',
      'Fri 22:00-06:00 Europe/Berlin',
      '2026-12-05T05:00:00Z',
      false,
    ],
    [
      'Sat 22:30 local (Saturday is not a day the window opens)',
      'Fri 22:00-06:00 Europe/Berlin',
      '2026-12-05T21:30:00Z',
      false,
    ],
    [
      'Fri 04:00 local (Thursday night never opened)',
      'Fri 22:00-06:00 Europe/Berlin',
      '2026-12-04T03:00:00Z',
      false,
    ],
    [
      'Mon 04:00 local under Mon-Fri (Sunday night never opened)',
      'Mon-Fri 22:00-06:00 Europe/Berlin',
      '2026-11-30T03:00:00Z',
      false,
    ],
    [
      'Sat 04:00 local under Mon-Fri (Friday night opened)',
      'Mon-Fri 22:00-06:00 Europe/Berlin',
      '2026-12-05T03:00:00Z',
      true,
    ],
    [
      'Tue 04:00 local under Mon-Fri',
      'Mon-Fri 22:00-06:00 Europe/Berlin',
      '2026-12-01T03:00:00Z',
      true,
    ],
  ])('%s', (_case, window, instant, open) => {
    expect(openAt(window, instant)).toBe(open);
  });
});

describe('isInsideWindow: day lists and wrapping ranges', () => {
  // Noon UTC in the week from Monday 2026-11-30 to Sunday 2026-12-06.
  const noon = (day: number) =>
    new Date(Date.UTC(2026, 10, 30 + ((day + 6) % 7), 12)).toISOString();
  const DAYS = [
    ['Sun', SUN],
    ['Mon', MON],
    ['Tue', TUE],
    ['Wed', WED],
    ['Thu', THU],
    ['Fri', FRI],
    ['Sat', SAT],
  ] as const;
  const cases = (text: string, open: readonly number[]) =>
    DAYS.map(([name, day]) => [text, name, open.includes(day), noon(day)] as const);

  it.each([
    ...cases('Mon,Wed,Fri 09:00-17:00 UTC', [MON, WED, FRI]),
    ...cases('Fri-Mon 09:00-17:00 UTC', [FRI, SAT, SUN, MON]),
  ])('%s at noon on %s: open %s', (text, _day, open, instant) => {
    expect(openAt(text, instant)).toBe(open);
  });
});
