import { readFileSync } from 'node:fs';

/**
 * The package's version, from its own package.json: the nearest one above this module (src/,
 * dist/, or dist/bench/src/ for the benchmark build), never one outside the package.
 */
export function packageVersion(): string {
  for (let up = 1; up <= 3; up++) {
    const manifest = new URL(`${'../'.repeat(up)}package.json`, import.meta.url);
    let text: string;
    try {
      text = readFileSync(manifest, 'utf8');
    } catch {
      continue;
    }
    const { name, version } = JSON.parse(text) as { name?: string; version?: string };
    if (name === 'pod-rebalancer' && version) return version;
  }
  throw new Error('package.json of pod-rebalancer not found above dist/');
}

/** What `pod_rebalancer_build_info` reports. */
export interface BuildInfo {
  version: string;
  nodeVersion: string;
}

/** The running build: this package's version on this Node.js. */
export function currentBuild(): BuildInfo {
  return { version: packageVersion(), nodeVersion: process.version };
}
