import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, loadConfig, type Config } from '../config.js';

/** Exit codes of every subcommand: documented in `pod-rebalancer --help` and the README. */
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

/** Parses a subcommand's flags strictly; an unknown or malformed flag is bad input. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new BadInput((error as Error).message);
  }
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
