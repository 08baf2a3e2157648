import { hash, timingSafeEqual } from 'node:crypto';
import { WatchedFile } from '../adapters/secret-file.js';

/** Decides whether a presented bearer token is one we accept. */
export interface TokenSource {
  accepts(presented: string): Promise<boolean>;
}

/** Bytes of a token compared as they are: a random token's; a longer one (a JWT) adds its hash. */
const PREFIX = 256;
/** What is compared of every token: PREFIX bytes, then a longer token's SHA-256. */
const WIDTH = PREFIX + 32;

/**
 * Writes what is compared of `token` into `into` (WIDTH bytes, zeros where the token ends) and
 * returns its length in bytes. A token longer than PREFIX bytes is cut there (never inside a
 * character) and its SHA-256 follows: two such tokens of one length match only when equal.
 */
function comparable(token: string, into: Buffer): number {
  into.fill(0);
  into.write(token, 0, PREFIX);
  const length = Buffer.byteLength(token);
  if (length > PREFIX) hash('sha256', token, 'buffer').copy(into, PREFIX);
  return length;
}

/**
 * The tokens we accept, compared in constant time: the presented token and each known one are
 * brought to WIDTH bytes (`comparable`), and every known token is compared in full, lengths
 * too, so neither a known token's length nor which one matched shows in the timing. Only a
 * presented token longer than PREFIX is hashed, which tells its sender nothing new. No hash for
 * ordinary tokens: a SHA-256 per request cost each request of an alert storm 1–1.5 µs (issue 22).
 */
class KnownTokens {
  private readonly known: readonly { bytes: Buffer; length: number }[];
  /** The presented token's bytes, reused: a comparison runs to its end without yielding. */
  private readonly presented = Buffer.alloc(WIDTH);

  constructor(tokens: readonly string[]) {
    this.known = tokens.map((token) => {
      const bytes = Buffer.alloc(WIDTH);
      return { bytes, length: comparable(token, bytes) };
    });
  }

  matches(presented: string): boolean {
    const length = comparable(presented, this.presented);
    let matched = false;
    for (const token of this.known) {
      const same = timingSafeEqual(this.presented, token.bytes);
      matched = (same && length === token.length) || matched;
    }
    return matched;
  }
}

/** One token from the environment (WEBHOOK_TOKEN). */
export function staticTokens(token: string): TokenSource {
  const known = new KnownTokens([token]);
  return { accepts: async (presented) => known.matches(presented) };
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
  let known = new KnownTokens([]);
  return {
    async accepts(presented) {
      const text = await file.read().catch(() => '');
      if (text !== parsedFrom) {
        known = new KnownTokens(parseTokenFile(text));
        parsedFrom = text;
      }
      return known.matches(presented);
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
