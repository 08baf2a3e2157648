import { randomUUID } from 'node:crypto';
import type { Logger } from '../adapters/logger.js';
import { claimSlot, liveEntries, releaseSlot, type ActionBudget } from '../core/budget.js';
import { formatDuration } from '../core/duration.js';
import type { DeploymentFacts } from '../core/types.js';
import { keyedSerializer } from '../concurrency.js';
import { UpstreamError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ActionBudgetStore, Clock, Cluster } from '../ports.js';
import { onceEventName, recordEvent } from './events.js';

export interface BudgetDeps {
  actionBudget: ActionBudgetStore;
  cluster: Cluster;
  telemetry: Metrics;
  logger: Logger;
  identity: string;
}

/** A slot taken (and how to hand it back), or the skip that says the budget is used up. */
export type Slot =
  | { taken: true; release(): Promise<void> }
  | { taken: false; gate: { reason: 'budget-exhausted'; detail: string } };

/** The action a slot is for; `beforeWrite` may still refuse it (the deadline) once its turn came. */
export interface SlotAction {
  now: Date;
  dryRun: boolean;
  beforeWrite?: () => void;
}

/** Compare-and-swap attempts before giving up with a retryable error (503). */
const MAX_ATTEMPTS = 8;

const queues = new WeakMap<ActionBudgetStore, ReturnType<typeof keyedSerializer>>();

/**
 * Runs budget updates of one store (one process) one after another. Targets of one payload are
 * handled several at once; without this they would all read the same version and all but one
 * lose the compare-and-swap, again and again. Across replicas the Lease's CAS still decides.
 */
function oneAtATime<T>(store: ActionBudgetStore, task: () => Promise<T>): Promise<T> {
  let serialize = queues.get(store);
  if (!serialize) queues.set(store, (serialize = keyedSerializer()));
  return serialize('budget', task);
}
/**
 * Keeps `pod_rebalancer_action_budget_remaining` right before this replica acts: the whole budget
 * at start (it has seen no action; 0 would read as "exhausted"), then, read from the budget Lease
 * in the background at each scrape, what is left for all replicas. A failed read keeps the last
 * value; a slot taken sets it too.
 */
export function showBudgetLeft(
  budget: ActionBudget | undefined,
  deps: Pick<BudgetDeps, 'actionBudget' | 'telemetry' | 'logger'> & { clock: Clock },
): void {
  if (!budget) return;
  const gauge = deps.telemetry.actionBudgetRemaining;
  gauge.set(budget.limit);
  let reading = false;
  deps.telemetry.onBudgetScrape(() => {
    if (reading) return;
    reading = true;
    deps.actionBudget
      .read()
      .then(
        (record) => {
          const used = liveEntries(record?.entries ?? [], budget, deps.clock.now()).length;
          gauge.set(Math.max(0, budget.limit - used));
        },
        (error: unknown) => {
          deps.logger.warn('cannot read the action budget for its gauge', {
            error: (error as Error).message,
          });
        },
      )
      .finally(() => (reading = false));
  });
}

const NO_BUDGET: Slot = { taken: true, release: async () => undefined };

/**
 * Takes one slot of the cluster-wide action budget for an action on `deployment`, before the
 * per-Deployment cooldown Lease. Dry runs take a slot too, so a DRY_RUN burn-in shows when the
 * budget would have bitten. When it is used up, the Deployment gets a Warning Event, once per
 * budget window whatever the number of notifications and replicas.
 */
export async function takeActionSlot(
  deployment: DeploymentFacts,
  budget: ActionBudget | undefined,
  action: SlotAction,
  deps: BudgetDeps,
): Promise<Slot> {
  if (!budget) return NO_BUDGET;
  return oneAtATime(deps.actionBudget, () => claimOne(deployment, budget, action, deps));
}

async function claimOne(
  deployment: DeploymentFacts,
  budget: ActionBudget,
  action: SlotAction,
  deps: BudgetDeps,
): Promise<Slot> {
  const claim = {
    id: randomUUID(),
    at: action.now,
    deployment: `${deployment.namespace}/${deployment.name}`,
    dryRun: action.dryRun,
  };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const record = await deps.actionBudget.read();
    const answer = claimSlot(record?.entries ?? [], budget, claim);
    if (!answer.granted) {
      deps.telemetry.actionBudgetRemaining.set(0);
      return refuse(deployment, budget, { now: action.now, freesAt: answer.freesAt }, deps);
    }
    action.beforeWrite?.();
    if (await deps.actionBudget.write(record, answer.entries, deps.identity)) {
      deps.telemetry.actionBudgetRemaining.set(answer.remaining);
      const release = () => oneAtATime(deps.actionBudget, () => releaseClaim(claim.id, deps));
      return { taken: true, release };
    }
  }
  throw new UpstreamError(
    'kubernetes',
    'conflict',
    true,
    `the action budget Lease changed under us ${MAX_ATTEMPTS} times in a row`,
  );
}

async function refuse(
  deployment: DeploymentFacts,
  budget: ActionBudget,
  at: { now: Date; freesAt: Date },
  deps: BudgetDeps,
): Promise<Slot> {
  const detail =
    `ACTION_BUDGET ${budget.text} is used up: ${budget.limit} actions (dry runs included) ` +
    `in the last ${formatDuration(budget.windowMs)} across all replicas; the next slot frees at ${at.freesAt.toISOString()}`;
  await recordEvent(
    {
      deployment,
      type: 'Warning',
      reason: 'ActionBudgetExhausted',
      action: 'Refuse',
      message: `Not rebalanced: ${detail}`,
      at: at.now,
      name: onceEventName(deployment, 'ActionBudgetExhausted', budget.windowMs, at.now),
    },
    deps,
  );
  return { taken: false, gate: { reason: 'budget-exhausted', detail } };
}

/**
 * Hands a slot back when the action did not happen after all (the cooldown Lease went to
 * another replica). Best effort: if it fails, the slot stays used until it leaves the window,
 * which errs towards doing less.
 */
async function releaseClaim(id: string, deps: BudgetDeps): Promise<void> {
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = await deps.actionBudget.read();
      if (!record || !record.entries.some((entry) => entry.id === id)) return;
      if (await deps.actionBudget.write(record, releaseSlot(record.entries, id), deps.identity))
        return;
    }
  } catch (error) {
    deps.logger.warn('could not hand back an action budget slot', {
      error: (error as Error).message,
    });
  }
}
