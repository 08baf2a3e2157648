import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
// @ts-expect-error: a plain .mjs script without types; it lists the files users copy from.
import { pinnedFiles } from '../../scripts/pin-release.mjs';
import { repoRoot } from '../rules/tools.js';

/** README.md, docs/ and deploy/: what a platform engineer reads and copies. */
const files = (pinnedFiles() as string[]).map((path) => ({
  path,
  text: readFileSync(join(repoRoot, path), 'utf8'),
}));
const occurrences = (pattern: RegExp) =>
  files.flatMap(({ path, text }) => [...text.matchAll(pattern)].map((m) => `${path}: ${m[0]}`));

describe('the install docs and manifests', () => {
  it('name one image everywhere: registry.example.com/platform/pod-rebalancer', () => {
    // A registry host (it has a dot), a path, pod-rebalancer, and a tag or the end of the line.
    const images = occurrences(
      /\b[\w-]+(?:\.[\w-]+)+(?:\/[\w.-]+)*\/pod-rebalancer(?=:\d|[ \t]*$)/gm,
    )
      .map((hit) => hit.split(': ')[1])
      .filter((name) => !name!.startsWith('github.com'));

    expect(new Set(images)).toEqual(new Set(['registry.example.com/platform/pod-rebalancer']));
  });

  it('point PROMETHEUS_URL at prometheus-operated, whatever the Helm release is called', () => {
    expect(occurrences(/kube-prometheus-stack-prometheus\b/g)).toEqual([]);
  });

  it('say "three URLs" where the example overlay has three', () => {
    expect(occurrences(/both URLs|two `\?ref=`/g)).toEqual([]);
  });

  it('never send GUARD_QUERY (or anything) to the removed deploy/base/configmap.yaml', () => {
    expect(occurrences(/deploy\/base\/configmap\.yaml/g)).toEqual([]);
  });

  it('uninstall the Secret from alertmanagerSpec.secrets before deleting it', () => {
    const operations = files.find((f) => f.path === 'docs/operations.md')!.text;
    const uninstall = operations.slice(operations.indexOf('## Uninstalling'));

    expect(uninstall.indexOf('alertmanagerSpec.secrets')).toBeGreaterThan(0);
    expect(uninstall.indexOf('alertmanagerSpec.secrets')).toBeLessThan(
      uninstall.indexOf('delete secret pod-rebalancer-webhook-token'),
    );
  });
});
