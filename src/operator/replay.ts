import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import winston from 'winston';
import { describeCluster } from '../adapters/kubeconfig.js';
import { createLogger, type Logger } from '../adapters/logger.js';
import { GUARD_ANNOTATION } from '../core/guard.js';
import type { Alert } from '../core/targets.js';
import type { Config } from '../config.js';
import { redactCredentials } from '../errors.js';
import { parseTokenFile } from '../http/tokens.js';
import { InMemoryActionBudgetStore } from '../adapters/memory.js';
import { realAdapters } from '../main.js';
import { createMetrics } from '../metrics.js';
import { createPipeline } from '../pipeline.js';
import type { AlertReport, Report } from '../report.js';
import { pipelineSettings } from '../service.js';
import {
  BadInput,
  CLUSTER_FLAGS,
  CLUSTER_FLAGS_USAGE,
  clusterKubeConfig,
  EXIT,
  loadOperatorConfig,
  parseFlags,
  readStream,
  type ExitCode,
  type OperatorIo,
} from './command.js';
import { parseReplayInput, type ReplayInput } from './replay-input.js';

export const REPLAY_USAGE = `usage: pod-rebalancer replay FILE|- [flags]

Runs the alerts in FILE (- reads stdin) through the service's pipeline. FILE is a webhook payload
Alertmanager sent (version 4) or its API v2 alert list (\`amtool alert query -o json\`).

  --execute             act as the service would: take the Lease, write Events, evict or delete
                        (DRY_RUN still applies); without it, decide and report, write nothing
  --at now|alert        verify the CPU now (default) or at each alert's startsAt
  --json                print the report as JSON
  --include-suppressed  also replay API v2 alerts that are silenced or inhibited
  --url URL             post to a running service (its /webhook) instead; needs --execute
  --token-file F        bearer token for --url (first line; default WEBHOOK_TOKEN)
${CLUSTER_FLAGS_USAGE}

With --execute, the cluster (context, API server, user; never a credential) is printed on
stderr before anything is done.`;

const FLAGS = {
  execute: { type: 'boolean', default: false },
  url: { type: 'string' },
  'token-file': { type: 'string' },
  at: { type: 'string', default: 'now' },
  json: { type: 'boolean', default: false },
  'include-suppressed': { type: 'boolean', default: false },
  ...CLUSTER_FLAGS,
} as const;

/** How long a running service may take to answer a posted payload. */
const REMOTE_TIMEOUT_MS = 60_000;

/** How a replay ran: decided and wrote nothing, acted as the service would, or posted. */
export type ReplayMode = 'observe-only' | 'execute' | 'remote';

export interface ReplayRequest {
  source: string;
  mode: ReplayMode;
  url: string | undefined;
  tokenFile: string | undefined;
  verifyAtAlertStart: boolean;
  json: boolean;
  includeSuppressed: boolean;
  kubeconfig: string | undefined;
  context: string | undefined;
}

type ReplayFlags = ReturnType<typeof parseFlags<typeof FLAGS>>['values'];

/** Flag combinations that cannot work, each with the sentence that says why. */
function conflictOf(values: ReplayFlags): string | undefined {
  if (values.at !== 'now' && values.at !== 'alert') {
    return `--at: expected now or alert (got "${values.at}")`;
  }
  if (values.execute && values.at === 'alert') {
    // Acting needs fresh CPU: pods young at startsAt look starved then but count as old now.
    return '--at alert only observes: --execute always verifies now';
  }
  if (values.url === undefined) {
    return values['token-file'] === undefined ? undefined : '--token-file goes with --url';
  }
  if (values.kubeconfig !== undefined || values.context !== undefined) {
    return '--url posts to a running service, which uses its own cluster: drop --kubeconfig and --context';
  }
  if (!values.execute) {
    return '--url posts the alerts to a running service, which acts on them as on any notification: add --execute to confirm';
  }
  return undefined;
}

/** Parses and checks the flags. Posting to a running service acts, so it needs --execute too. */
export function replayRequest(argv: string[]): ReplayRequest {
  const { values, positionals } = parseFlags(argv, FLAGS);
  if (positionals.length !== 1) {
    throw new BadInput(
      'replay needs exactly one FILE (or - for stdin); see pod-rebalancer replay --help',
    );
  }
  const conflict = conflictOf(values);
  if (conflict) throw new BadInput(conflict);
  return {
    source: positionals[0]!,
    mode: values.url !== undefined ? 'remote' : values.execute ? 'execute' : 'observe-only',
    url: values.url === undefined ? undefined : webhookUrl(values.url),
    tokenFile: values['token-file'],
    verifyAtAlertStart: values.at === 'alert',
    json: values.json,
    includeSuppressed: values['include-suppressed'],
    kubeconfig: values.kubeconfig,
    context: values.context,
  };
}

async function readSource(source: string, io: OperatorIo): Promise<string> {
  if (source === '-') return readStream(io.stdin);
  try {
    return await readFile(source, 'utf8');
  } catch (error) {
    throw new BadInput(`cannot read ${source} (${(error as NodeJS.ErrnoException).code})`);
  }
}

/** Pipeline logs go to stderr (stdout carries the report): warnings only, unless LOG_LEVEL is set. */
function stderrLogger(config: Readonly<Config>, io: OperatorIo): Logger {
  const stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      io.stderr.write(chunk.toString());
      done();
    },
  });
  const level = io.env.LOG_LEVEL ? config.logLevel : 'warn';
  return createLogger(level, new winston.transports.Stream({ stream }));
}

/**
 * Runs the alerts through the webhook's own pipeline (createPipeline over the real adapters),
 * observe-only unless executing: then it acts exactly as the service would, DRY_RUN included.
 */
export async function replayLocally(
  input: ReplayInput,
  request: Pick<ReplayRequest, 'mode' | 'verifyAtAlertStart'> &
    Partial<Pick<ReplayRequest, 'kubeconfig' | 'context'>>,
  io: OperatorIo,
): Promise<Report> {
  const config = loadOperatorConfig(io.env);
  const kubeConfig = clusterKubeConfig(request, io);
  // Acting on the wrong cluster is the one mistake replay cannot undo: say which one first.
  if (request.mode === 'execute') {
    io.stderr.write(`pod-rebalancer: acting on ${describeCluster(kubeConfig)}\n`);
  }
  const adapters = realAdapters(config, io.env, kubeConfig);
  const pipeline = createPipeline({
    ...adapters,
    actionBudget: adapters.actionBudget ?? new InMemoryActionBudgetStore(),
    logger: stderrLogger(config, io),
    settings: pipelineSettings(config),
    telemetry: createMetrics(new Registry()),
  });
  return pipeline.handleAlerts(input.payload.alerts, {
    requestId: `replay-${randomUUID()}`,
    groupKey: input.payload.groupKey,
    observeOnly: request.mode === 'observe-only',
    verifyAtAlertStart: request.verifyAtAlertStart,
    // The operator acts with their own credentials: say whether a rule has the alert active now.
    provenanceAdvisory: true,
  });
}

async function bearerToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv) {
  if (tokenFile === undefined) return env.WEBHOOK_TOKEN;
  let text: string;
  try {
    text = await readFile(tokenFile, 'utf8');
  } catch (error) {
    throw new BadInput(
      `--token-file: cannot read ${tokenFile} (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  const [token] = parseTokenFile(text);
  if (!token) throw new BadInput(`--token-file: ${tokenFile} holds no token`);
  return token;
}

/** The webhook URL: a base URL gets /webhook appended. */
export function webhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BadInput(
      `--url: expected an http(s) URL such as http://pod-rebalancer:8080 (got "${redactCredentials(url)}")`,
    );
  }
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = '/webhook';
  return parsed.toString();
}

/** What a running service answered, mapped to a report or the exit code its refusal means. */
async function remoteAnswer(response: Response, url: string): Promise<Report> {
  const text = await response.text();
  let body: (Partial<Report> & { error?: string }) | undefined;
  try {
    body = JSON.parse(text) as Partial<Report> & { error?: string };
  } catch {
    body = undefined;
  }
  if ((response.status === 200 || response.status === 503) && Array.isArray(body?.results)) {
    return { requestId: body.requestId ?? '', results: body.results };
  }
  const why = body?.error ?? text.slice(0, 200);
  const message = `${redactCredentials(url)} answered ${response.status}: ${redactCredentials(why)}`;
  if ([400, 413, 415].includes(response.status)) throw new BadInput(message);
  throw new Error(message);
}

/** Posts the payload to a running service's webhook, with its bearer token. */
export async function replayRemotely(
  input: ReplayInput,
  request: Pick<ReplayRequest, 'url' | 'tokenFile'>,
  io: OperatorIo,
): Promise<Report> {
  const url = request.url!;
  const token = await bearerToken(request.tokenFile, io.env);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': `replay-${randomUUID()}`,
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(input.payload),
      signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new Error(`cannot reach ${redactCredentials(url)}: ${redactCredentials(cause)}`);
  }
  return remoteAnswer(response, url);
}

const MODE_LINES: Record<ReplayMode, string> = {
  'observe-only':
    'observe only: decided and reported, nothing written (no Lease, no Event, no removal); --execute acts',
  execute:
    'executed: acted as the service would (the cooldown Lease, Events and removals are real; DRY_RUN applies)',
  remote: 'posted to the running service, which acted as on any notification',
};

function cores(value: number): string {
  return Number.isFinite(value) ? value.toFixed(3) : '-';
}

function alertBlock(result: AlertReport): string[] {
  const target =
    result.namespace && result.deployment
      ? `${result.namespace}/${result.deployment}`
      : '(no target)';
  const lines = [
    `${target}  ${result.alertname || '(no alertname)'}  fingerprint ${result.fingerprint}`,
    `  decision  ${result.outcome} (${result.reason})`,
    `  detail    ${result.detail}`,
  ];
  if (result.provenance) lines.push(`  rule      ${result.provenance}`);
  const { stats } = result;
  if (stats) {
    lines.push(
      `  stats     ${stats.count} pods, mean ${cores(stats.mean)}, stddev ${cores(stats.stddev)}, min ${cores(stats.min)}, max ${cores(stats.max)} cores`,
    );
  }
  lines.push(...rotationLines(result));
  const pods = result.pods ?? [];
  const width = Math.max(0, ...pods.map((p) => p.name.length));
  pods.forEach((pod, i) => {
    const label = i === 0 ? '  pods      ' : '            ';
    lines.push(
      `${label}${pod.name.padEnd(width)}  ${pod.role.padEnd(7)}  ${cores(pod.cpu)} cores  ${pod.result}`,
    );
  });
  return lines;
}

/**
 * How the pods go: together, or one by one; after step 1 of a rotation, the pod that follows,
 * which a running service removes once the replacement is Ready (replay itself does not wait).
 */
function rotationLines(result: AlertReport): string[] {
  if (!result.policy) return [];
  const { rotation, source } = result.policy;
  const lines = [`  rotation  ${rotation} (${source.rotation})`];
  if (result.rotation) {
    lines.push(
      `            ${result.rotation.step} of ${result.rotation.of} done; ${result.rotation.next} follows once the replacement is Ready, removed by the running service (until ${result.rotation.until})`,
    );
  }
  return lines;
}

/**
 * Which guards a local replay applies, said before the decisions: GUARD_QUERY and the alerts'
 * own `pod_rebalancer_guard`. A running service (--url) applies its own GUARD_QUERY.
 */
export function describeGuards(
  mode: ReplayMode,
  guardQuery: string | undefined,
  alerts: readonly Alert[],
): string {
  if (mode === 'remote') {
    return `guards: the running service applies its own GUARD_QUERY and each alert's ${GUARD_ANNOTATION}`;
  }
  const own = alerts.filter((a) => a.annotations?.[GUARD_ANNOTATION] !== undefined).length;
  const parts = [
    guardQuery ? `GUARD_QUERY ${guardQuery}` : 'no GUARD_QUERY',
    `${own} of ${alerts.length} alert${alerts.length === 1 ? '' : 's'} carry ${GUARD_ANNOTATION}`,
  ];
  return `guards: applied (${parts.join('; ')}); a guard that returns series skips the alert as guarded`;
}

/** The readable report: what was replayed and how, then one block per alert. */
export function formatReplay(
  report: Report,
  context: { source: string; mode: ReplayMode; url?: string; guards?: string },
): string {
  const where = context.mode === 'remote' ? ` (${redactCredentials(context.url ?? '')})` : '';
  const count = `${report.results.length} alert${report.results.length === 1 ? '' : 's'}`;
  const lines = [
    `replay of ${context.source === '-' ? 'stdin' : context.source}: ${count}`,
    `${MODE_LINES[context.mode]}${where}`,
    ...(context.guards ? [context.guards] : []),
    '',
  ];
  for (const result of report.results) lines.push(...alertBlock(result), '');
  return `${lines.join('\n')}`;
}

/** `pod-rebalancer replay`: exit 0 when every alert was decided, 1 when one failed, 2 on bad input. */
export async function replayCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const request = replayRequest(argv);
  const input = parseReplayInput(await readSource(request.source, io), request.source, request);
  for (const note of input.notes) io.stderr.write(`pod-rebalancer: ${note}\n`);
  const report =
    request.mode === 'remote'
      ? await replayRemotely(input, request, io)
      : await replayLocally(input, request, io);
  const guardQuery = request.mode === 'remote' ? undefined : loadOperatorConfig(io.env).guardQuery;
  const guards = describeGuards(request.mode, guardQuery, input.payload.alerts);
  io.stdout.write(
    request.json
      ? `${JSON.stringify({ mode: request.mode, guards, ...report }, null, 2)}\n`
      : formatReplay(report, { ...request, guards }),
  );
  return report.results.some((r) => r.outcome === 'failed') ? EXIT.failure : EXIT.done;
}
