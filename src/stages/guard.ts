import type { GateResult } from '../core/decide.js';
import { guardGate, guardsFor } from '../core/guard.js';
import type { TargetAlert } from '../core/targets.js';
import type { DeploymentFacts } from '../core/types.js';
import type { Metrics } from '../metrics.js';
import type { GuardSource } from '../ports.js';
import { onceEventName, recordEvent, type EventDeps } from './events.js';

export interface GuardDeps {
  guards: GuardSource;
  telemetry: Metrics;
}

/** A guard that stopped the action: `guarded`, or `invalid-policy` when it was refused. */
export type Held = NonNullable<GateResult>;

/**
 * Evaluates GUARD_QUERY, then the alert's own guard, each as an instant query at `at` (now when
 * absent). The first that holds or is refused stops the action; one that cannot be evaluated
 * (Prometheus unreachable) throws, so nothing is done and Alertmanager retries. Guarded skips
 * are counted per guard.
 */
export async function checkGuards(
  target: TargetAlert,
  globalQuery: string | undefined,
  deps: GuardDeps,
  at?: Date,
): Promise<Held | undefined> {
  const guards = guardsFor(globalQuery, target.annotations);
  if (!Array.isArray(guards)) return guards;
  for (const guard of guards) {
    const gate = guardGate(guard, await deps.guards.guardSeries(guard.expr, at));
    if (!gate) continue;
    if (gate.reason === 'guarded') deps.telemetry.guarded.inc({ guard: guard.kind });
    // Prometheus refused the expression: a broken rule (or GUARD_QUERY), counted like the rest.
    else deps.telemetry.invalidPolicy.inc({ alertname: target.alertname });
    return gate;
  }
  return undefined;
}

/** Event messages beyond 1 KiB are cut by kubectl and refused by events.k8s.io. */
const EVENT_MESSAGE_LIMIT = 1024;

function truncate(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/**
 * Says on the Deployment that an action was held back, and why: a Normal Event, once per
 * cooldown (not per notification: Alertmanager repeats while the guard holds).
 */
export async function sayHeldBack(
  deployment: DeploymentFacts,
  held: Held,
  context: { cooldownMs: number; now: Date },
  deps: EventDeps,
): Promise<void> {
  await recordEvent(
    {
      deployment,
      name: onceEventName(deployment, 'RebalanceGuarded', context.cooldownMs, context.now),
      type: 'Normal',
      reason: 'RebalanceGuarded',
      action: 'HoldBack',
      message: truncate(`Rebalance held back: ${held.detail}`, EVENT_MESSAGE_LIMIT),
      at: context.now,
    },
    deps,
  );
}
