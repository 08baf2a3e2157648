import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { firstLine, WatchedFile } from '../../src/adapters/secret-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-secret-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Replaces the file the way a kubelet updates a Secret volume: a new file renamed over. */
function replace(path: string, content: string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

describe('WatchedFile: a credential file that changes under the service', () => {
  it('when the file is replaced, then the next read after the recheck returns the new content', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'one');
    const file = new WatchedFile(path, 0);

    const before = await file.read();
    replace(path, 'two');

    expect(before).toBe('one');
    expect(await file.read()).toBe('two');
  });

  it('when the file disappears for a moment (a Secret volume mid-update), then the last content is kept', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'one');
    const file = new WatchedFile(path, 0);
    await file.read();

    unlinkSync(path);

    expect(await file.read()).toBe('one');
  });

  it('when the file was never readable, then reading fails naming the path only', async () => {
    const file = new WatchedFile(join(dir, 'missing'), 0);

    await expect(file.read()).rejects.toThrow(`cannot read ${join(dir, 'missing')}`);
  });

  it('when rechecked within the interval, then the file is not read again', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'one');
    const file = new WatchedFile(path, 60_000);
    await file.read();

    replace(path, 'two');

    expect(await file.read()).toBe('one');
  });

  it.each([
    ['token\n', 'token'],
    ['\n  token  \r\nsecond\n', 'token'],
    ['', ''],
  ])('firstLine(%p) is %p', (text, expected) => {
    expect(firstLine(text)).toBe(expected);
  });
});
