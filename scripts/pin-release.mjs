#!/usr/bin/env node
// Pins every pod-rebalancer remote URL the docs and examples tell users to copy
// (`https://github.com/pod-rebalancer/pod-rebalancer//deploy/...?ref=...` in README.md, docs/
// and deploy/) to one commit, so that a verbatim copy fetches exactly the tree the docs describe.
//
//   npm run release:pin             the last commit of main (first parents) that changed
//                                   deploy/base or deploy/components
//   npm run release:pin -- COMMIT   a commit (or tag) of your choice
//
// A full commit hash, not a tag: a hash can never be moved, and it travels with every clone of
// main, where a tag may not. test/repo/pins.test.ts checks that each pin resolves in this
// repository's history and holds every path its URL names. docs/releasing.md says when to run it.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A pod-rebalancer remote URL with its pin: group 1 is the path, group 2 the ref. */
export const PINNED_URL =
  /https:\/\/github\.com\/pod-rebalancer\/pod-rebalancer\/\/([\w/.-]+)\?ref=([\w.-]+)/g;

/** The files users copy from: README.md, every file under docs/ and deploy/. */
export function pinnedFiles() {
  const walk = (dir) =>
    readdirSync(join(repoRoot, dir)).flatMap((name) => {
      const path = `${dir}/${name}`;
      return statSync(join(repoRoot, path)).isDirectory() ? walk(path) : [path];
    });
  return ['README.md', ...walk('docs'), ...walk('deploy')].filter((path) =>
    /\.(md|ya?ml)$/.test(path),
  );
}

function git(...args) {
  return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
}

function main(argv) {
  // --first-parent: after a merge, the merge commit itself (whose tree holds both sides), never
  // a commit of one merged branch that lacks the other's changes.
  const wanted =
    argv[0] ??
    git('log', '-1', '--first-parent', '--format=%H', '--', 'deploy/base', 'deploy/components');
  const commit = git('rev-parse', '--verify', `${wanted}^{commit}`);
  let changed = 0;
  for (const path of pinnedFiles()) {
    const text = readFileSync(join(repoRoot, path), 'utf8');
    const pinned = text.replace(PINNED_URL, (_url, urlPath) => {
      return `https://github.com/pod-rebalancer/pod-rebalancer//${urlPath}?ref=${commit}`;
    });
    if (pinned !== text) {
      writeFileSync(join(repoRoot, path), pinned);
      changed += 1;
      console.log(`pinned ${path}`);
    }
  }
  console.log(`every pod-rebalancer URL is pinned to ${commit} (${changed} files changed)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
