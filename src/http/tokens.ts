import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';

/** Decides whether a presented bearer token is one we accept. */
export interface TokenSource {
  accepts(presented: string): Promise<boolean>;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
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
 * changes so that tokens rotate without a restart: during a rotation the file holds the old
 * and the new token. A Secret volume swaps a symlink, so the file is checked by stat (which
 * follows it), at most once per `recheckMs`.
 */
export function fileTokens(path: string, recheckMs = 1000): TokenSource {
  let known: Buffer[] = [];
  let signature = '';
  let checkedAt = -Infinity;
  let loading: Promise<void> | undefined;

  const reload = async () => {
    const info = await stat(path).catch(() => undefined);
    const next = info ? `${info.ino}:${info.size}:${info.mtimeMs}` : 'missing';
    if (next === signature) return;
    let text = '';
    try {
      if (info) text = await readFile(path, 'utf8');
    } catch {
      // A failed read (EMFILE, EACCES) keeps the tokens we had and tries again next time.
      return;
    }
    known = parseTokenFile(text).map(digest);
    signature = next;
  };

  return {
    async accepts(presented) {
      const now = performance.now();
      if (now - checkedAt >= recheckMs) {
        checkedAt = now;
        loading ??= reload().finally(() => (loading = undefined));
      }
      if (loading) await loading;
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
