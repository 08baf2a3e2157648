import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

/**
 * What tells that a file's content changed without reading it: its inode, size and mtime, from
 * a stat (which follows a Secret volume's symlink, swapped on each update). One definition for
 * every file re-read on change: secrets, tokens, the TLS certificate.
 */
export function changeMark(info: Pick<Stats, 'ino' | 'size' | 'mtimeMs'>): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}`;
}

/**
 * A file whose content is used on every request and may change under us: a projected
 * service-account token the kubelet rotates, a Secret volume updated in place (it swaps a
 * symlink, so the file is checked by stat, which follows it). It is checked at most once per
 * `recheckMs`, re-read when its inode, size or mtime changed, and a failed read keeps the last
 * good content. The content is never logged or put in an error.
 */
export class WatchedFile {
  private content: string | undefined;
  private signature = '';
  private checkedAt = -Infinity;
  private loading: Promise<void> | undefined;

  constructor(
    /** Path of the file; only the path may ever be shown. */
    readonly path: string,
    private readonly recheckMs = 1000,
    /**
     * The content while the file does not exist (deleted, not a failed read); undefined keeps
     * the last good content then too.
     */
    private readonly whenMissing?: string,
  ) {}

  /** The current content, re-read when the file changed. Rejects only if it was never readable. */
  async read(): Promise<string> {
    const now = performance.now();
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      this.loading ??= this.reload().finally(() => (this.loading = undefined));
    }
    if (this.loading) await this.loading;
    if (this.content === undefined) throw new Error(`cannot read ${this.path}`);
    return this.content;
  }

  private async reload(): Promise<void> {
    try {
      const next = changeMark(await stat(this.path));
      if (next === this.signature && this.content !== undefined) return;
      this.content = await readFile(this.path, 'utf8');
      this.signature = next;
    } catch (error) {
      // Missing for a moment (a Secret volume mid-update) or unreadable: keep what we had,
      // unless the owner says what a deleted file means.
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (missing && this.whenMissing !== undefined) {
        this.content = this.whenMissing;
        this.signature = 'missing';
      }
    }
  }
}

/** The first non-empty line of a secret file: a token or a password. */
export function firstLine(text: string): string {
  return (
    text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .find(Boolean) ?? ''
  );
}
