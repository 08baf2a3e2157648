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

  it('accepts no prefix, extension or zero-padded copy of a token, whatever its length', async () => {
    const tokens = staticTokens('abc');

    expect([
      await tokens.accepts('ab'),
      await tokens.accepts('abc\0'),
      await tokens.accepts('abc'.padEnd(300, '\0')),
      await tokens.accepts('x'.repeat(10_000)),
    ]).toEqual([false, false, false, false]);
  });

  it('after a longer token was refused, the token itself is accepted', async () => {
    const tokens = staticTokens('abc');

    expect([await tokens.accepts('abcd'), await tokens.accepts('abc')]).toEqual([false, true]);
  });

  it('a token past 256 bytes is told apart from one of the same length that differs only in a character cut off there', async () => {
    const token = `${'k'.repeat(255)}é`;
    const tokens = staticTokens(token);

    expect([
      await tokens.accepts(`${'k'.repeat(255)}è`),
      await tokens.accepts('k'.repeat(255)),
      await tokens.accepts(`${token}k`),
      await tokens.accepts(token),
    ]).toEqual([false, false, false, true]);
    expect(await staticTokens('k'.repeat(255)).accepts(`${'k'.repeat(255)}é`)).toBe(false);
  });

  it.each([256, 1000])(
    'with a token of %i bytes, one longer, one shorter and one differing in its last byte are refused, the token accepted',
    async (bytes) => {
      const token = 'k'.repeat(bytes);
      const tokens = staticTokens(token);

      expect([
        await tokens.accepts(`${token}k`),
        await tokens.accepts(token.slice(1)),
        await tokens.accepts(`${token.slice(1)}x`),
        await tokens.accepts(token),
      ]).toEqual([false, false, false, true]);
    },
  );

  it('with several tokens of different lengths in the file, each is accepted and nothing else', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-tokens-'));
    const file = join(dir, 'tokens');
    writeFileSync(file, `short\n${'long-'.repeat(100)}\n# comment\nmiddle-token\n`);
    const tokens = fileTokens(file, 0);

    expect([
      await tokens.accepts('short'),
      await tokens.accepts('long-'.repeat(100)),
      await tokens.accepts('middle-token'),
      await tokens.accepts('middle'),
      await tokens.accepts('shortmiddle-token'),
      await tokens.accepts('# comment'),
    ]).toEqual([true, true, true, false, false, false]);
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
