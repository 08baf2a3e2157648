import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { BadInput, EXIT, parseFlags, type ExitCode, type OperatorIo } from './command.js';

export const RULES_USAGE = `usage: pod-rebalancer rules test [flags] TEST_FILE...

Runs promtool's unit tests of your own rules, from your own repository. A test file's
rule_files may be plain Prometheus rule files or PrometheusRule manifests (their spec.groups
are what promtool gets); the default rule this version ships (rules/pod-rebalancer.rules.yml)
is added, so an override is tested next to the rule it overrides. Needs promtool on PATH
(Debian/Ubuntu: apt-get install prometheus; or a Prometheus release archive).

  --promtool FILE   the promtool to run (default: promtool on PATH)
  --no-default-rule do not add the shipped default rule`;

/** The default rule this package ships, beside dist/ (`files` in package.json). */
const SHIPPED_DEFAULT_RULE = fileURLToPath(
  new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url),
);

interface PromtoolTestFile {
  rule_files?: string[];
  [field: string]: unknown;
}

function readYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new BadInput(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  try {
    return parse(text) as unknown;
  } catch (error) {
    throw new BadInput(`${path} is not YAML: ${(error as Error).message}`);
  }
}

/**
 * A rule file promtool can read: the file itself, or, for a PrometheusRule manifest, its
 * spec.groups written into `scratch` (promtool knows only plain rule files).
 */
function plainRuleFile(path: string, scratch: string, index: number): string {
  const document = readYamlFile(path) as { kind?: string; spec?: { groups?: unknown } } | null;
  if (document?.kind !== 'PrometheusRule') return path;
  if (!Array.isArray(document.spec?.groups)) {
    throw new BadInput(`${path}: a PrometheusRule without spec.groups`);
  }
  const plain = join(scratch, `${index}-${basename(path)}`);
  writeFileSync(plain, stringify({ groups: document.spec.groups }));
  return plain;
}

/** The test file rewritten for promtool: absolute, plain rule files, the default rule first. */
function promtoolTestFile(testFile: string, scratch: string, withDefault: boolean): string {
  const test = readYamlFile(testFile) as PromtoolTestFile | null;
  if (!test || !Array.isArray(test.rule_files)) {
    throw new BadInput(`${testFile}: not a promtool test file (no rule_files list)`);
  }
  const ruleFiles = test.rule_files.map((file, index) =>
    plainRuleFile(resolve(dirname(testFile), file), scratch, index),
  );
  const hasDefault = ruleFiles.some((file) => basename(file) === basename(SHIPPED_DEFAULT_RULE));
  const rewritten = {
    ...test,
    rule_files: withDefault && !hasDefault ? [SHIPPED_DEFAULT_RULE, ...ruleFiles] : ruleFiles,
  };
  const out = join(scratch, basename(testFile));
  writeFileSync(out, stringify(rewritten));
  return out;
}

/** Runs promtool on one test file; its output is ours, the file named as the user wrote it. */
function runPromtool(promtool: string, testFile: string, shown: string, io: OperatorIo): boolean {
  const run = spawnSync(promtool, ['test', 'rules', testFile], { encoding: 'utf8' });
  if (run.error) {
    const missing = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new BadInput(
      missing
        ? `${promtool} not found: install promtool (Debian/Ubuntu: apt-get install prometheus) or pass --promtool FILE`
        : `${promtool} could not run: ${run.error.message}`,
    );
  }
  io.stdout.write(`${run.stdout}${run.stderr}`.split(testFile).join(shown));
  return run.status === 0;
}

/** `pod-rebalancer rules test FILE...`: exit 0 when every test passes, 1 when one fails. */
export async function rulesCommand(argv: string[], io: OperatorIo): Promise<ExitCode> {
  const { values, positionals } = parseFlags(argv, {
    promtool: { type: 'string', default: 'promtool' },
    'no-default-rule': { type: 'boolean', default: false },
  });
  const [action, ...files] = positionals;
  if (action !== 'test' || files.length === 0) {
    throw new BadInput('expected `rules test TEST_FILE...`; see pod-rebalancer rules --help');
  }
  const scratch = mkdtempSync(join(tmpdir(), 'pod-rebalancer-rules-'));
  try {
    let passed = true;
    for (const file of files) {
      const rewritten = promtoolTestFile(resolve(file), scratch, !values['no-default-rule']);
      passed = runPromtool(values.promtool, rewritten, file, io) && passed;
    }
    return passed ? EXIT.done : EXIT.failure;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
