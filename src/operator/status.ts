import { isNamespaceName, isObjectName } from '../core/names.js';
import { LeaseActionBudgetStore } from '../adapters/budget-lease.js';
import { LeaseCooldownStore } from '../adapters/cooldown-lease.js';
import { createKubeApis, KubernetesCluster, toUpstreamError } from '../adapters/kubernetes.js';
import { ConfigError, SETTINGS } from '../config.js';
import { cooldownEnds } from '../core/cooldown.js';
import { liveEntries, type ActionBudget } from '../core/budget.js';
import { inProgress, nextRotationStep, type RotationProgress } from '../core/rotation.js';
import type { BudgetRecord, Cluster, CooldownEntry } from '../ports.js';
import {
  BadInput,
  CLUSTER_FLAGS,
  CLUSTER_FLAGS_USAGE,
  clusterKubeConfig,
  EXIT,
  parseFlags,
  type ExitCode,
  type OperatorIo,
} from './command.js';

export const STATUS_USAGE = `usage: pod-rebalancer status [flags]

Every Deployment pod-rebalancer holds state for (its Leases in STATE_NAMESPACE): cooldown
until, consecutive ineffective actions, stopped or not, the last action, a one-by-one
rotation in progress (its step, what it waits for, its deadline); and the action budget left.

  --json                print the state as JSON
${CLUSTER_FLAGS_USAGE}`;

export const RESUME_USAGE = `usage: pod-rebalancer resume NAMESPACE/DEPLOYMENT

Clears the stop mark pod-rebalancer set after consecutive ineffective actions on the
Deployment (and their count), so that the next alert may act again. A compare-and-swap on
the Deployment's Lease in STATE_NAMESPACE: a concurrent change is read again, never lost.

${CLUSTER_FLAGS_USAGE}`;

/** How many times resume reads again after a concurrent change. */
const RESUME_ATTEMPTS = 3;

function stateNamespace(env: NodeJS.ProcessEnv): string {
  try {
    return SETTINGS.STATE_NAMESPACE.parse(env.STATE_NAMESPACE || SETTINGS.STATE_NAMESPACE.default!);
  } catch (error) {
    throw new ConfigError([`STATE_NAMESPACE: ${(error as Error).message}`]);
  }
}

function storeFor(io: OperatorIo, flags: { kubeconfig?: string; context?: string }) {
  const namespace = stateNamespace(io.env);
  const apis = createKubeApis(clusterKubeConfig(flags, io), 5000);
  return {
    store: new LeaseCooldownStore(apis, namespace),
    cluster: new KubernetesCluster(apis, 'status'),
    budgetStore: new LeaseActionBudgetStore(apis, namespace),
    namespace,
  };
}

/** One Deployment's state as `status` shows it. */
export interface DeploymentState {
  deployment: string;
  /** null when not in cooldown (JSON keeps the key). */
  cooldownUntil: string | null;
  consecutiveIneffective: number;
  stopped: string | null;
  lastAction: { at: string; pods: string[]; dryRun: boolean } | null;
  /** A one-by-one rotation between its steps; null when none is. */
  rotation: RotationState | null;
}

/** A rotation in progress: its step, the pod that follows, what step 2 waits for, until when. */
export interface RotationState {
  step: number;
  of: number;
  next: string;
  waitingFor: string;
  deadline: string;
}

/**
 * What step 2 of a rotation waits for, read now from the API server with the service's own
 * rule (the guards are evaluated by the service, only once the cluster is ready for step 2).
 */
async function rotationOf(
  entry: CooldownEntry,
  cluster: Cluster,
  now: Date,
): Promise<RotationState | null> {
  const progress = entry.record.rotation;
  if (!inProgress(progress)) return null;
  return {
    step: 1,
    of: 2,
    next: progress.next.name,
    waitingFor: await waitingFor(entry, progress, cluster, now),
    deadline: progress.deadline.toISOString(),
  };
}

async function waitingFor(
  entry: CooldownEntry,
  progress: RotationProgress,
  cluster: Cluster,
  now: Date,
): Promise<string> {
  const found = await cluster.getDeployment(entry.target);
  const deployment = found?.uid === entry.deploymentUid ? found : undefined;
  const pods = deployment ? await cluster.listPods(deployment) : [];
  const step = nextRotationStep(progress, { deployment, pods, guard: 'unchecked' }, now);
  if (step.next === 'wait') return `${step.waitingFor}: ${step.detail}`;
  if (step.next === 'check-guards') return 'guard: evaluated by the service just before step 2';
  if (step.next === 'remove') return `nothing: the service removes ${progress.next.name} next`;
  return `its end (${step.end}): ${step.detail}`;
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
    rotation: null,
  };
}

export interface BudgetState {
  /** As configured: N/DURATION, or off. */
  budget: string;
  used: number | undefined;
  left: number | undefined;
}

function actionBudgetOf(env: NodeJS.ProcessEnv): ActionBudget | undefined {
  try {
    const budget = SETTINGS.ACTION_BUDGET.parse(
      env.ACTION_BUDGET || SETTINGS.ACTION_BUDGET.default!,
    );
    return budget === 'off' ? undefined : budget;
  } catch (error) {
    throw new ConfigError([`ACTION_BUDGET: ${(error as Error).message}`]);
  }
}

/** What is left of ACTION_BUDGET, counted from the budget Lease's recent actions. */
export function budgetOf(
  budget: ActionBudget | undefined,
  record: BudgetRecord | undefined,
  now: Date,
): BudgetState {
  if (!budget) return { budget: 'off', used: undefined, left: undefined };
  const used = liveEntries(record?.entries ?? [], budget, now).length;
  return { budget: budget.text, used, left: Math.max(0, budget.limit - used) };
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
  const { rotation } = state;
  if (rotation) {
    parts.push(
      `rotation ${rotation.step} of ${rotation.of}: ${rotation.next} next, waiting for ${rotation.waitingFor}, until ${rotation.deadline}`,
    );
  }
  return parts.join('  ');
}

function formatBudget(budget: BudgetState): string {
  if (budget.left === undefined) return `action budget: ${budget.budget}`;
  return `action budget: ${budget.left} left (${budget.used} used of ${budget.budget})`;
}

/** `pod-rebalancer status`: one line per Deployment with state, then the budget. */
export async function statusCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean', default: false },
    ...CLUSTER_FLAGS,
  });
  if (positionals.length > 0)
    throw new BadInput(`unexpected argument "${positionals[0]}"; see pod-rebalancer status --help`);
  const actionBudget = actionBudgetOf(io.env);
  const { store, budgetStore, cluster } = storeFor(io, values);
  const now = new Date();
  let states: DeploymentState[];
  let budgetRecord: BudgetRecord | undefined;
  try {
    let entries: CooldownEntry[];
    [entries, budgetRecord] = await Promise.all([store.list(), budgetStore.read()]);
    states = await Promise.all(
      entries.map(async (entry) => ({
        ...stateOf(entry, now),
        rotation: await rotationOf(entry, cluster, now),
      })),
    );
  } catch (error) {
    throw toUpstreamError(error, 'reading the state');
  }
  states.sort((a, b) => a.deployment.localeCompare(b.deployment));
  const budget = budgetOf(actionBudget, budgetRecord, now);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ deployments: states, budget }, null, 2)}\n`);
  } else {
    const lines = states.length > 0 ? states.map(formatState) : ['no Deployment has state yet'];
    io.stdout.write(`${[...lines, formatBudget(budget)].join('\n')}\n`);
  }
  return EXIT.done;
}

function parseTarget(text: string | undefined): { namespace: string; deployment: string } {
  const [namespace = '', deployment = '', ...rest] = (text ?? '').split('/');
  if (rest.length > 0 || !isNamespaceName(namespace) || !isObjectName(deployment))
    throw new BadInput(
      `expected NAMESPACE/DEPLOYMENT, e.g. payments/api (got "${text ?? ''}"); see pod-rebalancer resume --help`,
    );
  return { namespace, deployment };
}

/** `pod-rebalancer resume NAMESPACE/DEPLOYMENT`: clears the stop mark (compare-and-swap). */
export async function resumeCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const { values, positionals } = parseFlags(argv, CLUSTER_FLAGS);
  if (positionals.length !== 1) parseTarget(undefined);
  const target = parseTarget(positionals[0]);
  const name = `${target.namespace}/${target.deployment}`;
  const { store, namespace } = storeFor(io, values);
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
