import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../adapters/kubeconfig.js';
import { ConfigError, loadConfig, SETTINGS, type Config } from '../config.js';
export { packageVersion } from '../version.js';

/** Exit codes of every subcommand: documented in `pod-rebalancer --help` and docs/cli.md. */
export const EXIT = { done: 0, failure: 1, badInput: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Where a subcommand reads and writes; the bin passes the process's, tests their own. */
export interface OperatorIo {
  env: NodeJS.ProcessEnv;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
  /** The kubeconfig to use instead of KUBECONFIG / the in-cluster service account (tests). */
  kubeConfig?: KubeConfig;
}

/** Input the command cannot work with (flags, files, payloads): exit 2 with this message. */
export class BadInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadInput';
  }
}

/**
 * The sentence for a flag Node's parser refused, naming it. The configuration is the environment,
 * so a flag spelled like a variable (`--dry-run` for DRY_RUN) says which variable to set.
 */
function unknownFlagMessage(error: Error & { code?: string }): string {
  const flag = /'(-[^']*)'/.exec(error.message)?.[1];
  if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || flag === undefined) return error.message;
  const variable = flag.replace(/^-+/, '').replace(/=.*$/, '').replace(/-/g, '_').toUpperCase();
  const hint =
    variable in SETTINGS ? `; the configuration is the environment: set ${variable}=...` : '';
  return `unknown flag ${flag}${hint}`;
}

/** Parses a subcommand's flags strictly; an unknown or malformed flag is bad input. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new BadInput(unknownFlagMessage(error as Error));
  }
}

/** Refuses arguments a command does not take, naming them. */
export function rejectPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) {
    const quoted = positionals.map((p) => `"${p}"`).join(', ');
    throw new BadInput(
      `unexpected argument${positionals.length > 1 ? 's' : ''} ${quoted}; see pod-rebalancer ${command} --help`,
    );
  }
}

/** The flags of every command that reaches a Kubernetes cluster. */
export const CLUSTER_FLAGS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const;

export const CLUSTER_FLAGS_USAGE = `  --kubeconfig FILE     kubeconfig to use (default: KUBECONFIG, else ~/.kube/config, else the
                        in-cluster service account)
  --context NAME        kubeconfig context to use (default: its current-context)`;

/**
 * The KubeConfig a command reaching the cluster uses: `--kubeconfig`/`--context`, else
 * KUBECONFIG, ~/.kube/config or the in-cluster service account. A problem is a ConfigError
 * naming the flag or variable (exit 2 through runCommand). Tests inject `io.kubeConfig`.
 */
export function clusterKubeConfig(
  flags: { kubeconfig?: string; context?: string },
  io: Pick<OperatorIo, 'env' | 'kubeConfig'>,
): KubeConfig {
  if (io.kubeConfig && flags.kubeconfig === undefined && flags.context === undefined) {
    return io.kubeConfig;
  }
  return loadKubeConfig({ file: flags.kubeconfig, context: flags.context }, io.env);
}

/**
 * The service's configuration, from the same environment variables. The operator commands
 * never serve the webhook, so a missing WEBHOOK_TOKEN is not an error for them.
 */
export function loadOperatorConfig(env: NodeJS.ProcessEnv): Readonly<Config> {
  const needsNoToken = env.WEBHOOK_TOKEN === undefined && env.WEBHOOK_TOKEN_FILE === undefined;
  return loadConfig(needsNoToken ? { ...env, WEBHOOK_TOKEN: 'unused-by-operator-commands' } : env);
}

/**
 * Runs a subcommand, turning the errors every command shares into their exit codes: bad input
 * and an invalid configuration exit 2 with one line per problem; anything else exits 1.
 */
export async function runCommand(
  io: OperatorIo,
  command: () => Promise<ExitCode>,
): Promise<ExitCode> {
  try {
    return await command();
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) io.stderr.write(`pod-rebalancer: ${problem}\n`);
      return EXIT.badInput;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`pod-rebalancer: ${message}\n`);
    return error instanceof BadInput ? EXIT.badInput : EXIT.failure;
  }
}

/** Reads a whole stream (stdin for `-`) as UTF-8 text. */
export async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
