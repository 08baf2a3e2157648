import { hash, timingSafeEqual } from 'node:crypto';
import { WatchedFile } from '../adapters/secret-file.js';

/** Decides whether a presented bearer token is one we accept. */
export interface TokenSource {
  accepts(presented: string): Promise<boolean>;
}

function digest(token: string): Buffer {
  return hash('sha256', token, 'buffer');
}

/**
 * Compares in constant time: both sides are hashed to the same length first, and every known
 * token is compared, so neither the length nor the position of a match shows in the timing.
 */
function matchesAny(presented: string, known: readonly Buffer[]): boolean {
  const candidate = digest(presented);
  let matched = false;
  for (const token of known) matched = timingSafeEqual(candidate, token) || matched;
  return matched;
}

/** One token from the environment (WEBHOOK_TOKEN). */
export function staticTokens(token: string): TokenSource {
  const known = [digest(token)];
  return { accepts: async (presented) => matchesAny(presented, known) };
}

/**
 * Tokens from a file, one a line (blank lines and `#` comments ignored), re-read when the file
 * changes (WatchedFile) so that tokens rotate without a restart: during a rotation the file
 * holds the old and the new token. A deleted file revokes every token; a failed read keeps the
 * tokens we had.
 */
export function fileTokens(path: string, recheckMs = 1000): TokenSource {
  const file = new WatchedFile(path, recheckMs, '');
  let parsedFrom: string | undefined;
  let known: Buffer[] = [];
  return {
    async accepts(presented) {
      const text = await file.read().catch(() => '');
      if (text !== parsedFrom) {
        known = parseTokenFile(text).map(digest);
        parsedFrom = text;
      }
      return matchesAny(presented, known);
    },
  };
}

/** The tokens in a token file's text. */
export function parseTokenFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
