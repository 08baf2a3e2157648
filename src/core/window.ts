/**
 * ACTIVE_WINDOW: the weekdays and hours, in an IANA timezone, when disruptions are allowed.
 * Form: "<days> <HH:MM>-<HH:MM> <Zone>", e.g. "Mon-Fri 09:00-17:00 Europe/Berlin".
 * Days are a range ("Mon-Fri", "Fri-Mon") or a list ("Mon,Wed,Fri"). An end before the start
 * crosses midnight ("22:00-06:00"); the day named is the day the window opens.
 */
export interface ActiveWindow {
  days: ReadonlySet<number>;
  startMinute: number;
  endMinute: number;
  timeZone: string;
  text: string;
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const FORM = /^(\S+)\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})\s+(\S+)$/;

/** Parses ACTIVE_WINDOW; throws an Error whose message says what is expected. */
export function parseActiveWindow(text: string): ActiveWindow {
  const match = FORM.exec(text.trim());
  if (!match)
    throw new Error(
      'expected "<days> HH:MM-HH:MM <IANA zone>", e.g. "Mon-Fri 09:00-17:00 Europe/Berlin"',
    );
  const [, daysText, sh, sm, eh, em, timeZone] = match as unknown as string[];
  const startMinute = toMinute(sh!, sm!);
  if (startMinute === 24 * 60)
    throw new Error('the window cannot open at 24:00 (use 00:00 of the next day)');
  const endMinute = toMinute(eh!, em!);
  if (startMinute === endMinute) throw new Error('the window opens and closes at the same minute');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new Error(`unknown timezone "${timeZone}"`);
  }
  return { days: parseDays(daysText!), startMinute, endMinute, timeZone: timeZone!, text };
}

function toMinute(hours: string, minutes: string): number {
  const h = Number(hours);
  const m = Number(minutes);
  if (h > 24 || m > 59 || (h === 24 && m !== 0))
    throw new Error(`invalid time ${hours}:${minutes}`);
  return h * 60 + m;
}

function dayIndex(name: string): number {
  const index = DAY_NAMES.indexOf(name);
  if (index < 0) throw new Error(`unknown day "${name}" (use ${DAY_NAMES.join(', ')})`);
  return index;
}

function parseDays(text: string): Set<number> {
  const days = new Set<number>();
  for (const part of text.split(',')) {
    const [from, to, extra] = part.split('-');
    if (extra !== undefined) throw new Error(`"${part}" is not a day or a range of two days`);
    const first = dayIndex(from!);
    const last = to === undefined ? first : dayIndex(to);
    for (let d = first; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === last) break;
    }
  }
  return days;
}

const PARTS_CACHE = new Map<string, Intl.DateTimeFormat>();

function localParts(now: Date, timeZone: string): { day: number; minute: number } {
  let format = PARTS_CACHE.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    PARTS_CACHE.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(now).map((p) => [p.type, p.value]));
  return {
    day: DAY_NAMES.indexOf(parts.weekday ?? ''),
    minute: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

/** Whether `now` falls inside the window, judged on the wall clock of the window's timezone. */
export function isInsideWindow(window: ActiveWindow, now: Date): boolean {
  const { day, minute } = localParts(now, window.timeZone);
  if (window.startMinute < window.endMinute) {
    return window.days.has(day) && minute >= window.startMinute && minute < window.endMinute;
  }
  // Crosses midnight: after the start on an active day, or before the end on the day after one.
  const previousDay = (day + 6) % 7;
  return (
    (window.days.has(day) && minute >= window.startMinute) ||
    (window.days.has(previousDay) && minute < window.endMinute)
  );
}
