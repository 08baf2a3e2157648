/**
 * The cluster-wide action budget: at most `limit` actions per rolling window, across all
 * replicas, dry runs included. The store keeps the list of recent actions; this module decides,
 * from that list and the clock, whether one more fits. Pure: no I/O.
 */
import { formatDuration, parseDuration } from './duration.js';

export interface ActionBudget {
  limit: number;
  windowMs: number;
  /** As configured, e.g. "20/1h". */
  text: string;
}

/** One action counted against the budget. */
export interface BudgetEntry {
  /** Unique per claim, so that a claim can be handed back. */
  id: string;
  at: Date;
  /** `namespace/name` of the Deployment acted on. */
  deployment: string;
  dryRun: boolean;
}

export type BudgetClaim =
  | { granted: true; entries: BudgetEntry[]; remaining: number }
  | { granted: false; remaining: 0; freesAt: Date; used: number };

// Each action is 100 to 400 bytes of the Lease annotation (names vary); Kubernetes allows 256 KiB.
const MAX_LIMIT = 500;

/**
 * Parses ACTION_BUDGET: `N/DURATION` (e.g. `20/1h`) or `off`. Returns undefined for `off`;
 * throws an Error saying what is expected otherwise.
 */
export function parseActionBudget(text: string): ActionBudget | undefined {
  if (text.trim() === 'off') return undefined;
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
  const limit = Number(match?.[1]);
  const windowMs = match ? parseDuration(match[2]!) : undefined;
  if (!match || !(limit >= 1 && limit <= MAX_LIMIT) || windowMs === undefined || windowMs < 1000) {
    throw new Error(
      `expected N/DURATION with N from 1 to ${MAX_LIMIT} and a duration of at least 1s (e.g. 20/1h), or off`,
    );
  }
  return { limit, windowMs, text: `${limit}/${formatDuration(windowMs)}` };
}

/** How far apart replicas' clocks may be without the budget freeing a slot early. */
export const BUDGET_CLOCK_SKEW_MS = 10 * 60_000;

/**
 * How long an entry counts, by the reader's clock. Each entry's time is its writer's clock: with
 * that clock behind the reader's, the entry would leave the window early and free a slot too
 * soon. So it counts for the window plus the skew tolerated (the window itself when shorter):
 * never a looser cap, at worst a slot freed that much later.
 */
function countedForMs(budget: ActionBudget): number {
  return budget.windowMs + Math.min(BUDGET_CLOCK_SKEW_MS, budget.windowMs);
}

/** The entries that still count at `now`: inside the rolling window, skew tolerated. */
export function liveEntries(
  entries: readonly BudgetEntry[],
  budget: ActionBudget,
  now: Date,
): BudgetEntry[] {
  const countedFor = countedForMs(budget);
  return entries.filter((entry) => now.getTime() - entry.at.getTime() < countedFor);
}

/**
 * Whether one more action fits. Granted: the entries to write (expired ones dropped, the new one
 * added) and what is left after it. Refused: when the oldest counted action leaves the window.
 */
export function claimSlot(
  entries: readonly BudgetEntry[],
  budget: ActionBudget,
  claim: BudgetEntry,
): BudgetClaim {
  const live = liveEntries(entries, budget, claim.at);
  if (live.length >= budget.limit) {
    const oldest = Math.min(...live.map((entry) => entry.at.getTime()));
    return {
      granted: false,
      remaining: 0,
      freesAt: new Date(oldest + countedForMs(budget)),
      used: live.length,
    };
  }
  return { granted: true, entries: [...live, claim], remaining: budget.limit - live.length - 1 };
}

/** The entries without the claim `id` (handed back when the action did not happen). */
export function releaseSlot(entries: readonly BudgetEntry[], id: string): BudgetEntry[] {
  return entries.filter((entry) => entry.id !== id);
}
