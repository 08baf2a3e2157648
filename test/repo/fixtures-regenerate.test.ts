import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { requireProgram } from '../support/processes.js';

const COMMITTED = new URL('../fixtures/alertmanager-0.25/', import.meta.url).pathname;
const SCRIPT = new URL('../../scripts/regenerate-alertmanager-fixtures.mjs', import.meta.url)
  .pathname;
/** Values that are part of the shape: a different one is a different payload, not new data. */
const KEPT = new Set(['status', 'version', 'truncatedAlerts']);

/**
 * A payload reduced to its shape: object keys (sorted), array lengths and element shapes, the
 * values of `status`, `version` and `truncatedAlerts`, and the type of every other value.
 */
export function shape(value: unknown, key = ''): unknown {
  if (KEPT.has(key)) return value;
  if (Array.isArray(value)) return value.map((item) => shape(item));
  if (value !== null && typeof value === 'object') {
    return Object.keys(value)
      .sort()
      .map((k) => [k, shape((value as Record<string, unknown>)[k], k)]);
  }
  return typeof value;
}

const read = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));

describe('scripts/regenerate-alertmanager-fixtures.mjs, against the real Alertmanager 0.25', () => {
  let out: string;
  let run: ReturnType<typeof spawnSync>;
  beforeAll(() => {
    requireProgram('prometheus-alertmanager', 'prometheus-alertmanager');
    out = mkdtempSync(join(tmpdir(), 'pod-rebalancer-fixtures-'));
    run = spawnSync('node', [SCRIPT, '--out', out], { encoding: 'utf8', timeout: 120_000 });
  }, 150_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const committed = readdirSync(COMMITTED).filter((f) => f.endsWith('.json'));

  it('runs to the end and writes every committed fixture, and only those', () => {
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(readdirSync(out).sort()).toEqual([...committed].sort());
  });

  it.each(committed)(
    'when %s is regenerated, then it has the committed shape: keys, statuses, version "4"',
    (file) => {
      const regenerated = read(out, file);

      expect(regenerated.version).toBe('4');
      expect(shape(regenerated)).toEqual(shape(read(COMMITTED, file)));
    },
  );

  it('tells payloads of another shape apart (a missing key, another status)', () => {
    const original = read(COMMITTED, 'resolved.json');
    const missingKey = { ...original };
    delete missingKey.truncatedAlerts;
    const otherStatus = { ...original, status: 'firing' };

    expect(shape(missingKey)).not.toEqual(shape(original));
    expect(shape(otherStatus)).not.toEqual(shape(original));
  });
});
