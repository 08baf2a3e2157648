import type { GateResult } from './decide.js';
import type { ActiveWindow } from './window.js';
import { isInsideWindow } from './window.js';

/** What the cooldown gate needs of the stored record. */
export interface CooldownFacts {
  /** When the writer started it, by the writer's clock. */
  startedAt: Date;
  durationMs: number;
  /** When this replica first saw this version of the record, by its own clock. */
  observedAt?: Date;
}

/**
 * When the cooldown ends, by this replica's clock; the cooldown starts when an action starts.
 * The writer's start is another replica's clock: with that clock behind ours, its cooldown
 * would end early here. So, as client-go's leader election does, the cooldown also lasts its
 * whole duration from when this replica saw the record change, whichever ends later. A change
 * seen late (no notification for hours) would start it over: the time observed counts only up
 * to one more duration past the writer's end, which is also the clock skew this tolerates.
 */
export function cooldownEnds(record: CooldownFacts): Date {
  return new Date(cooldownEndMs(record));
}

/** cooldownEnds in epoch milliseconds. */
function cooldownEndMs(record: CooldownFacts): number {
  const writerEnd = record.startedAt.getTime() + record.durationMs;
  if (!record.observedAt) return writerEnd;
  const observedEnd = record.observedAt.getTime() + record.durationMs;
  return Math.max(writerEnd, Math.min(observedEnd, writerEnd + record.durationMs));
}

/** Stops a target whose Deployment was acted on less than one cooldown ago (by this clock). */
export function gateCooldown(record: CooldownFacts | undefined, now: Date): GateResult {
  // In epoch milliseconds: on the storm path (every repeat inside the cooldown) no Date is built.
  if (!record) return undefined;
  const endMs = cooldownEndMs(record);
  if (now.getTime() >= endMs) return undefined;
  return { reason: 'cooldown', detail: cooldownDetail(endMs) };
}

/** The last cooldown skip's detail: an alert storm asks for the same one again and again. */
let lastDetail = { endMs: Number.NaN, text: '' };

function cooldownDetail(endMs: number): string {
  if (lastDetail.endMs !== endMs) {
    lastDetail = { endMs, text: `in cooldown until ${new Date(endMs).toISOString()}` };
  }
  return lastDetail.text;
}

/** Stops a target outside ACTIVE_WINDOW, when one is configured. */
export function gateWindow(window: ActiveWindow | undefined, now: Date): GateResult {
  if (!window || isInsideWindow(window, now)) return undefined;
  return { reason: 'outside-window', detail: `outside ACTIVE_WINDOW "${window.text}"` };
}
