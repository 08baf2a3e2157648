import type { V1Lease } from '@kubernetes/client-node';
import { LeaseCooldownStore } from '../adapters/cooldown-lease.js';
import { createKubeApis, toUpstreamError } from '../adapters/kubernetes.js';
import { ConfigError, SETTINGS } from '../config.js';
import { cooldownEnds } from '../core/cooldown.js';
import { parseDuration } from '../core/duration.js';
import type { CooldownEntry } from '../ports.js';
import { kubeConfigOf } from './check.js';
import { BadInput, EXIT, parseFlags, type ExitCode, type OperatorIo } from './command.js';

export const STATUS_USAGE = `usage: pod-rebalancer status [flags]

Every Deployment pod-rebalancer holds state for (its Leases in STATE_NAMESPACE): cooldown
until, consecutive ineffective actions, stopped or not, the last action; and the action
budget left.

  --json   print the state as JSON`;

export const RESUME_USAGE = `usage: pod-rebalancer resume NAMESPACE/DEPLOYMENT

Clears the stop mark pod-rebalancer set after consecutive ineffective actions on the
Deployment (and their count), so that the next alert may act again. A compare-and-swap on
the Deployment's Lease in STATE_NAMESPACE: a concurrent change is read again, never lost.`;

/**
 * The action budget's Lease (issue 11 keeps it in STATE_NAMESPACE under this name, its recent
 * actions as a JSON list of {at, ...} in this annotation). Read here only to show what is left.
 */
const BUDGET_LEASE_NAME = 'pod-rebalancer-action-budget';
const BUDGET_ANNOTATION = 'pod-rebalancer.io/actions';

/** How many times resume reads again after a concurrent change. */
const RESUME_ATTEMPTS = 3;

function stateNamespace(env: NodeJS.ProcessEnv): string {
  try {
    return SETTINGS.STATE_NAMESPACE.parse(env.STATE_NAMESPACE || 'pod-rebalancer');
  } catch (error) {
    throw new ConfigError([`STATE_NAMESPACE: ${(error as Error).message}`]);
  }
}

function storeFor(io: OperatorIo): { store: LeaseCooldownStore; namespace: string } {
  const namespace = stateNamespace(io.env);
  const apis = createKubeApis(kubeConfigOf(io), 5000);
  return { store: new LeaseCooldownStore(apis, namespace), namespace };
}

/** One Deployment's state as `status` shows it. */
export interface DeploymentState {
  deployment: string;
  /** null when not in cooldown (JSON keeps the key). */
  cooldownUntil: string | null;
  consecutiveIneffective: number;
  stopped: string | null;
  lastAction: { at: string; pods: string[]; dryRun: boolean } | null;
}

function stateOf(entry: CooldownEntry, now: Date): DeploymentState {
  const { record } = entry;
  const until = cooldownEnds(record);
  return {
    deployment: `${entry.target.namespace}/${entry.target.deployment}`,
    cooldownUntil: until > now ? until.toISOString() : null,
    consecutiveIneffective: record.consecutiveIneffective,
    stopped: record.stopped ?? null,
    lastAction: record.lastAction
      ? {
          at: record.lastAction.at.toISOString(),
          pods: record.lastAction.pods,
          dryRun: record.lastAction.dryRun,
        }
      : null,
  };
}

export interface BudgetState {
  /** As configured: N/DURATION, or off. */
  budget: string;
  used: number | undefined;
  left: number | undefined;
}

/** The budget Lease's list of recent actions; an unreadable one counts as empty. */
function recentActions(lease: V1Lease | undefined): { at?: string }[] {
  try {
    const parsed: unknown = JSON.parse(lease?.metadata?.annotations?.[BUDGET_ANNOTATION] ?? '[]');
    return Array.isArray(parsed) ? (parsed as { at?: string }[]) : [];
  } catch {
    return [];
  }
}

/** What is left of ACTION_BUDGET, counted from the budget Lease's recent actions. */
export function budgetOf(
  env: NodeJS.ProcessEnv,
  lease: V1Lease | undefined,
  now: Date,
): BudgetState {
  const text = (env.ACTION_BUDGET || '20/1h').trim();
  const match = /^(\d+)\s*\/\s*(\S+)$/.exec(text);
  const windowMs = match ? parseDuration(match[2]!) : undefined;
  if (!match || windowMs === undefined) return { budget: text, used: undefined, left: undefined };
  const actions = recentActions(lease);
  const used = actions.filter(
    (a) => now.getTime() - new Date(a.at ?? 0).getTime() < windowMs,
  ).length;
  return { budget: text, used, left: Math.max(0, Number(match[1]) - used) };
}

function formatState(state: DeploymentState): string {
  const parts = [
    state.deployment,
    state.cooldownUntil ? `cooldown until ${state.cooldownUntil}` : 'no cooldown',
    `${state.consecutiveIneffective} ineffective in a row`,
    state.stopped ? `STOPPED (${state.stopped})` : 'acting',
    state.lastAction
      ? `last action ${state.lastAction.at}${state.lastAction.dryRun ? ' (dry run)' : ''}: ${state.lastAction.pods.join(', ')}`
      : 'no action yet',
  ];
  return parts.join('  ');
}

function formatBudget(budget: BudgetState): string {
  if (budget.left === undefined) return `action budget: ${budget.budget}`;
  return `action budget: ${budget.left} left (${budget.used} used of ${budget.budget})`;
}

/** `pod-rebalancer status`: one line per Deployment with state, then the budget. */
export async function statusCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean', default: false } });
  if (positionals.length > 0)
    throw new BadInput(`unexpected argument "${positionals[0]}"; see pod-rebalancer status --help`);
  const { store } = storeFor(io);
  const now = new Date();
  let entries: CooldownEntry[];
  let budgetLease: V1Lease | undefined;
  try {
    [entries, budgetLease] = await Promise.all([store.list(), store.readLease(BUDGET_LEASE_NAME)]);
  } catch (error) {
    throw toUpstreamError(error, 'reading the state');
  }
  const states = entries
    .map((entry) => stateOf(entry, now))
    .sort((a, b) => a.deployment.localeCompare(b.deployment));
  const budget = budgetOf(io.env, budgetLease, now);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ deployments: states, budget }, null, 2)}\n`);
  } else {
    const lines = states.length > 0 ? states.map(formatState) : ['no Deployment has state yet'];
    io.stdout.write(`${[...lines, formatBudget(budget)].join('\n')}\n`);
  }
  return EXIT.done;
}

function parseTarget(text: string | undefined): { namespace: string; deployment: string } {
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(
    text ?? '',
  );
  if (!match)
    throw new BadInput(
      `expected NAMESPACE/DEPLOYMENT, e.g. payments/api (got "${text ?? ''}"); see pod-rebalancer resume --help`,
    );
  return { namespace: match[1]!, deployment: match[3]! };
}

/** `pod-rebalancer resume NAMESPACE/DEPLOYMENT`: clears the stop mark (compare-and-swap). */
export async function resumeCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const { positionals } = parseFlags(argv, {});
  if (positionals.length !== 1) parseTarget(undefined);
  const target = parseTarget(positionals[0]);
  const name = `${target.namespace}/${target.deployment}`;
  const { store, namespace } = storeFor(io);
  for (let attempt = 0; attempt < RESUME_ATTEMPTS; attempt++) {
    const result = await store.clearStop(target);
    if (result === 'cleared') {
      io.stdout.write(`resumed ${name}: the stop mark is cleared; the next alert may act\n`);
      return EXIT.done;
    }
    if (result === 'not-stopped') {
      io.stdout.write(`${name} is not stopped; nothing to do\n`);
      return EXIT.done;
    }
    if (result === 'no-lease') {
      io.stderr.write(`pod-rebalancer: no state for ${name} in namespace ${namespace}\n`);
      return EXIT.failure;
    }
  }
  io.stderr.write(
    `pod-rebalancer: the Lease of ${name} kept changing; nothing was cleared, try again\n`,
  );
  return EXIT.failure;
}
