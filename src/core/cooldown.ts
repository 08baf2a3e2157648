import type { GateResult } from './decide.js';
import type { ActiveWindow } from './window.js';
import { isInsideWindow } from './window.js';

/** What the cooldown gate needs of the stored record. */
export interface CooldownFacts {
  startedAt: Date;
  durationMs: number;
}

/** When the cooldown ends; the cooldown starts when an action starts. */
export function cooldownEnds(record: CooldownFacts): Date {
  return new Date(record.startedAt.getTime() + record.durationMs);
}

/** Stops a target whose Deployment was acted on less than one cooldown ago. */
export function gateCooldown(record: CooldownFacts | undefined, now: Date): GateResult {
  // In epoch milliseconds: on the storm path (every repeat inside the cooldown) no Date is built
  // until the detail needs one.
  if (!record || now.getTime() >= record.startedAt.getTime() + record.durationMs) return undefined;
  return { reason: 'cooldown', detail: `in cooldown until ${cooldownEnds(record).toISOString()}` };
}

/** Stops a target outside ACTIVE_WINDOW, when one is configured. */
export function gateWindow(window: ActiveWindow | undefined, now: Date): GateResult {
  if (!window || isInsideWindow(window, now)) return undefined;
  return { reason: 'outside-window', detail: `outside ACTIVE_WINDOW "${window.text}"` };
}
