import { timingSafeEqual } from 'node:crypto';
import { WatchedFile } from '../adapters/secret-file.js';

/** Decides whether a presented bearer token is one we accept. */
export interface TokenSource {
  accepts(presented: string): Promise<boolean>;
}

/** The narrowest the comparison buffers are: wider than any token anyone generates. */
const MIN_WIDTH = 256;

/**
 * The tokens we accept, compared in constant time: the presented token and each known one sit in
 * buffers of one width (zeros after the token), wide enough for the longest known token, and
 * every known token is compared in full, so neither a token's length nor the position of a
 * match shows in the timing. A presented token wider than the buffer is cut to fit and compared
 * all the same: its length differs from every known one, so it never matches. No hash per
 * request: a SHA-256 cost each request of an alert storm 1–1.5 µs (issue 22), and bringing
 * both sides to one length is all the hash did here.
 */
class KnownTokens {
  private readonly width: number;
  private readonly known: readonly { bytes: Buffer; length: number }[];
  /** The presented token's buffer, reused: a comparison runs to its end without yielding. */
  private readonly presented: Buffer;

  constructor(tokens: readonly string[]) {
    this.width = Math.max(MIN_WIDTH, ...tokens.map((token) => Buffer.byteLength(token)));
    this.known = tokens.map((token) => ({
      bytes: this.padded(token),
      length: Buffer.byteLength(token),
    }));
    this.presented = Buffer.alloc(this.width);
  }

  matches(presented: string): boolean {
    const length = Buffer.byteLength(presented);
    this.presented.fill(0);
    this.presented.write(presented);
    let matched = false;
    for (const token of this.known) {
      matched =
        (timingSafeEqual(this.presented, token.bytes) && length === token.length) || matched;
    }
    return matched;
  }

  private padded(token: string): Buffer {
    const bytes = Buffer.alloc(this.width);
    bytes.write(token);
    return bytes;
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
