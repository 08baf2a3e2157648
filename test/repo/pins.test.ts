import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
// @ts-expect-error: a plain .mjs script without types; it is the one definition of a pin.
import { PINNED_URL, pinnedFiles } from '../../scripts/pin-release.mjs';
import { repoRoot } from '../rules/tools.js';

const OVERLAY = 'deploy/examples/kube-prometheus-stack';

/** One `git` call in this checkout; status and output, never a throw. */
function git(...args: string[]): { ok: boolean; out: string } {
  const run = spawnSync('git', args, { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  return { ok: run.status === 0, out: `${run.stdout ?? ''}`.trim() };
}

interface Pin {
  file: string;
  path: string;
  ref: string;
}

/** Every pinned pod-rebalancer URL users are told to copy, with the file that says so. */
function pins(): Pin[] {
  return (pinnedFiles() as string[]).flatMap((file) =>
    [...readFileSync(join(repoRoot, file), 'utf8').matchAll(PINNED_URL as RegExp)].map(
      ([, path, ref]) => ({ file, path: path!, ref: ref! }),
    ),
  );
}

/** Why the history cannot be checked here, or undefined when it can. */
function historyMissing(): string | undefined {
  const inside = git('rev-parse', '--is-inside-work-tree');
  if (!inside.ok || inside.out !== 'true') return 'not a git checkout';
  if (git('rev-parse', '--is-shallow-repository').out === 'true') {
    return 'a shallow clone holds only part of the history (git fetch --unshallow to check the pins)';
  }
  return undefined;
}

const missing = historyMissing();
const inHistory = missing === undefined ? it : it.skip;
const skipNote = missing === undefined ? '' : ` (SKIPPED: ${missing})`;

describe('the ?ref= pins the docs and examples tell users to copy', () => {
  it('exist: docs/operations.md and the example overlay pin pod-rebalancer', () => {
    const files = new Set(pins().map((pin) => pin.file));

    expect(files).toEqual(new Set(['docs/operations.md', `${OVERLAY}/kustomization.yaml`]));
  });

  it('name one commit, by its full hash, which no one can move and every clone of main holds', () => {
    const refs = new Set(pins().map((pin) => pin.ref));

    expect(refs.size).toBe(1);
    for (const ref of refs) expect(ref).toMatch(/^[0-9a-f]{40}$/);
  });

  inHistory(`resolve to a commit of this repository's history${skipNote}`, () => {
    const unresolved = [...new Set(pins().map((pin) => pin.ref))].filter(
      (ref) => !git('rev-parse', '--verify', '--quiet', `${ref}^{commit}`).ok,
    );

    expect(unresolved).toEqual([]);
  });

  inHistory(`hold, at that commit, every kustomization their URLs name${skipNote}`, () => {
    const absent = pins()
      .filter((pin) => !git('cat-file', '-e', `${pin.ref}:${pin.path}/kustomization.yaml`).ok)
      .map((pin) => `${pin.file}: ${pin.path} at ${pin.ref}`);

    expect(absent).toEqual([]);
  });

  inHistory(
    `build the example overlay from the pinned tree, as a verbatim copy would${skipNote}`,
    () => {
      const [pin] = pins();
      const tree = mkdtempSync(join(tmpdir(), 'pod-rebalancer-pinned-'));
      try {
        // The pinned commit's deploy/, as kustomize would fetch it from GitHub.
        const archive = spawnSync('git', ['archive', '--format=tar', pin!.ref, 'deploy'], {
          cwd: repoRoot,
          maxBuffer: 64 * 1024 * 1024,
        });
        expect(archive.status).toBe(0);
        expect(spawnSync('tar', ['-x', '-C', tree], { input: archive.stdout }).status).toBe(0);
        const overlay = join(tree, 'overlay');
        cpSync(join(repoRoot, OVERLAY), overlay, { recursive: true });
        const text = readFileSync(join(overlay, 'kustomization.yaml'), 'utf8');
        writeFileSync(
          join(overlay, 'kustomization.yaml'),
          text.replace(PINNED_URL as RegExp, (_url, path: string) => `../${path}`),
        );

        const build = spawnSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' });

        expect(build.stderr).toBe('');
        expect(build.stdout).toContain('kind: Deployment');
        expect(build.stdout).toMatch(/name: pod-rebalancer-checkout-order-consumer/);
      } finally {
        rmSync(tree, { recursive: true, force: true });
      }
    },
  );
});
