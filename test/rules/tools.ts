import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The repository root: commands run here, so paths read as they do in docs/rules.md. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** A command-line tool the rule tests need, and the Debian package that installs it. */
export interface Tool {
  command: string;
  debianPackage: string;
}

export const PROMTOOL: Tool = { command: 'promtool', debianPackage: 'prometheus' };
export const AMTOOL: Tool = { command: 'amtool', debianPackage: 'prometheus-alertmanager' };

/** What one run of a tool printed, and how it exited. */
export interface ToolRun {
  commandLine: string;
  status: number | null;
  stdout: string;
  /** stdout and stderr, for failure messages. */
  output: string;
}

/**
 * Runs a tool from the repository root. A missing tool is an error naming the Debian package to
 * install, never a reason to skip: the rules are only as good as the checks that ran.
 */
export function runTool(tool: Tool, args: string[], env: NodeJS.ProcessEnv = process.env): ToolRun {
  const commandLine = [tool.command, ...args].join(' ');
  const result = spawnSync(tool.command, args, {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? `${tool.command} is not on PATH. Install the Debian package \`${tool.debianPackage}\` ` +
            `(apt-get install ${tool.debianPackage}), which provides it.`
        : `${commandLine} could not run: ${result.error.message}`,
    );
  }
  return {
    commandLine,
    status: result.status,
    stdout: result.stdout,
    output: `${result.stdout}${result.stderr}`,
  };
}

/** Fails with the tool's whole output unless it exited 0. */
export function expectSuccess(run: ToolRun): void {
  if (run.status !== 0) {
    throw new Error(`${run.commandLine} exited with ${run.status}:\n${run.output}`);
  }
}

/** Reads and parses a YAML file of the repository. */
export function readYaml<T>(path: string): T {
  return parse(readFileSync(join(repoRoot, path), 'utf8')) as T;
}

/** Runs `use` with a fresh temporary directory, removed afterwards. */
export function withTempDir<T>(use: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-rules-'));
  try {
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A Prometheus rule, recording or alerting, as written in rules/*.yml. */
export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A Prometheus rule group. */
export interface RuleGroup {
  name: string;
  interval?: string;
  rules: Rule[];
}

/** Every rule file in rules/ (the promtool tests in rules/tests/ excluded). */
export function listRuleFiles(): string[] {
  return readdirSync(join(repoRoot, 'rules'))
    .filter((name) => name.endsWith('.yml'))
    .sort()
    .map((name) => `rules/${name}`);
}

/** Every promtool test file in rules/tests/. */
export function listRuleTestFiles(): string[] {
  return readdirSync(join(repoRoot, 'rules/tests'))
    .filter((name) => name.endsWith('.yml'))
    .sort()
    .map((name) => `rules/tests/${name}`);
}

/** The groups of one rule file. */
export function readRuleGroups(path: string): RuleGroup[] {
  return readYaml<{ groups: RuleGroup[] }>(path).groups;
}
