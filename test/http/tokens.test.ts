import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { fileTokens, staticTokens } from '../../src/http/tokens.js';

describe('webhook tokens', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts exactly the configured token', async () => {
    const tokens = staticTokens('abc');

    expect([
      await tokens.accepts('abc'),
      await tokens.accepts('abcd'),
      await tokens.accepts(''),
    ]).toEqual([true, false, false]);
  });

  it('when the token file cannot be read for a moment, then the tokens it held are still accepted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-tokens-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'current-token\n');
    const tokens = fileTokens(file, 0);
    expect(await tokens.accepts('current-token')).toBe(true);

    // stat succeeds but the read fails (EISDIR here; EMFILE or EACCES in life).
    rmSync(file);
    mkdirSync(file);

    expect(await tokens.accepts('current-token')).toBe(true);
  });
});
