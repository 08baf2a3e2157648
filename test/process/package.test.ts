import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildDist } from '../support/processes.js';
import { repoRoot } from '../rules/tools.js';

// npm's own range semantics (semver, which jest already brings).
const { satisfies } = createRequire(import.meta.url)('semver') as {
  satisfies: (version: string, range: string) => boolean;
};

interface Manifest {
  version: string;
  engines: { node: string };
  bin: Record<string, string>;
  scripts: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as Manifest;

/** The lowest and a far-future patch of every Node major `engines` admits. */
const SUPPORTED_NODES = ['22.13.0', '22.999.0', '24.0.0', '24.999.0'];

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, ...env },
  });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

describe('the npm package', () => {
  let dir: string;
  let install: { status: number | null; out: string };
  const prefix = () => join(dir, 'prefix');

  beforeAll(() => {
    buildDist();
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-pack-'));
    // prepack builds; dist is built above, so the scripts are skipped here.
    const pack = run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], repoRoot);
    if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.out}`);
    const [tarball] = readdirSync(dir).filter((name) => name.endsWith('.tgz'));
    // An empty cache and --offline: everything the CLI needs is in the tarball.
    install = run(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix(),
        '--offline',
        '--no-audit',
        '--no-fund',
        join(dir, tarball!),
      ],
      dir,
      { npm_config_cache: join(dir, 'cache'), npm_config_update_notifier: 'false' },
    );
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('when npm pack is installed into a temporary prefix, offline, then `pod-rebalancer --version` answers from it', () => {
    expect(install.out).not.toMatch(/npm error/);
    expect(install.status).toBe(0);

    const version = run(join(prefix(), 'bin', 'pod-rebalancer'), ['--version'], dir);

    expect(version).toEqual({ status: 0, out: `pod-rebalancer ${manifest.version}\n` });
  });

  it('when installed, then `pod-rebalancer rules test` finds the default rule it ships', () => {
    const example = join(repoRoot, 'deploy/examples/kube-prometheus-stack');
    const test = run(
      join(prefix(), 'bin', 'pod-rebalancer'),
      ['rules', 'test', 'tests/checkout-order-consumer.test.yml'],
      example,
    );

    expect(test.out).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });

  it('when installed on a Node that engines admits, then npm warns of no unsupported engine', () => {
    const supported = satisfies(process.version, manifest.engines.node);

    // On an unsupported Node (the suite still runs there) npm rightly warns.
    expect(/EBADENGINE/.test(install.out)).toBe(!supported);
  });
});

describe('engines', () => {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[] }>;
  };

  it('admits only maintained Node.js LTS lines: 24 (the image) first, and 22', () => {
    expect(manifest.engines.node).toBe('^24.0.0 || ^22.13.0');
    expect(satisfies('20.19.0', manifest.engines.node)).toBe(false);
  });

  it.each(SUPPORTED_NODES)(
    'when npm ci runs on Node %s, then every dependency in the lockfile, dev ones included, admits it (no EBADENGINE)',
    (node) => {
      const refusing = Object.entries(lock.packages)
        .filter(([path]) => path !== '')
        .flatMap(([path, entry]) => {
          const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
          return range && !satisfies(node, range) ? [`${path} needs node ${range}`] : [];
        });

      expect(refusing).toEqual([]);
    },
  );
});
