import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import type { OperatorIo } from '../../src/operator/command.js';

export const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

export { buildDist } from '../support/processes.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node dist/cli.js ...args` as a process, without blocking this one: the fake servers the
 * command talks to live in the test process. Killed after `timeoutMs`.
 */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  const child = spawn('node', [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** An OperatorIo whose output is kept, for calling a command's function directly. */
export interface CapturedIo extends OperatorIo {
  out(): string;
  err(): string;
}

export function captureIo(
  env: Record<string, string>,
  options: { kubeConfig?: KubeConfig; stdin?: string; tty?: boolean } = {},
): CapturedIo {
  let out = '';
  let err = '';
  return {
    env,
    kubeConfig: options.kubeConfig,
    stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text), isTTY: options.tty },
    out: () => out,
    err: () => err,
  };
}
