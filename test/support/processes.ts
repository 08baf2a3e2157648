import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Fails with a clear message when a program the tests need is not installed. Never skips. */
export function requireProgram(name: string, debianPackage: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(
      `${name} is not on PATH: install it with "apt-get install -y ${debianPackage}" (Debian package)`,
    );
  }
}

/** The bin runs from dist/; `npm test` builds first (pretest), this covers a direct jest run. */
export function buildDist(): void {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
}

/** Kills a child still running (SIGKILL) and waits until it is gone. */
export async function killIfRunning(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A started program whose output is kept for the failure message. */
export interface Program {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts `command`; with `env`, that environment only (else this process's). */
export function startProgram(command: string, args: string[], env?: NodeJS.ProcessEnv): Program {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `check` every `intervalMs` until it returns true; fails after `timeoutMs` saying what it waited for. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Waits until GET url answers 200 (a program's readiness endpoint). */
export async function waitForReady(
  url: string,
  program: Program,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `${url} to answer 200 (program output: ${program.output().slice(-2000)})`,
    async () => {
      if (program.child.exitCode !== null)
        throw new Error(`exited with ${program.child.exitCode}: ${program.output()}`);
      return fetch(url).then(
        (r) => r.ok,
        () => false,
      );
    },
    timeoutMs,
  );
}
