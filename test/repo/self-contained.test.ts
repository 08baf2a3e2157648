import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where code that runs at build, test or run time lives. */
const SCANNED = ['src', 'test', 'scripts', 'bench', 'rules', 'deploy', '.ci'];
const SKIPPED = new Set(['node_modules', 'dist', '.git']);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIPPED.has(entry.name)) return [];
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

/**
 * The relative paths in a file's text (quoted, starting with `../`) that, resolved from the file's
 * own folder, land outside the repository, and any mention of the steering folder `shared/`: a
 * user's clone has neither.
 */
export function pathsOutside(file: string, text: string, root: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/["'`]((?:\.\.\/)+[^"'`\s]*)["'`]/g)) {
    const target = resolve(dirname(file), match[1]!);
    if (target !== root && !target.startsWith(root + sep)) found.push(match[1]!);
  }
  for (const match of text.matchAll(/(?<![./\w])(?:\.\.\/)+shared\b[^"'`\s]*/g))
    found.push(match[0]);
  return [...new Set(found)];
}

describe('the repository is self-contained', () => {
  it('finds a path that climbs out of the repository, and one into the steering folder beside it', () => {
    const file = join(ROOT, 'test', 'http', 'example.ts');
    // Built from parts, so that this file itself names no path out of the repository.
    const up = (n: number, path: string) => `${'../'.repeat(n)}${path}`;
    const text = [
      `new URL('${up(3, 'shared/fixtures/a.json')}', import.meta.url)`,
      `readFileSync('${up(1, 'fixtures/a.json')}')`,
      `cat ${up(1, 'shared/SPEC.md')}`,
    ].join('\n');
    expect(pathsOutside(file, text, ROOT)).toEqual([
      up(3, 'shared/fixtures/a.json'),
      up(1, 'shared/SPEC.md'),
    ]);
  });

  it('no source, test, script, rule, manifest or CI file reads outside the repository', () => {
    const offenders = SCANNED.flatMap((top) => filesUnder(join(ROOT, top))).flatMap((file) =>
      pathsOutside(file, readFileSync(file, 'utf8'), ROOT).map(
        (path) => `${relative(ROOT, file)}: ${path}`,
      ),
    );
    expect(offenders).toEqual([]);
  });

  it('the Alertmanager fixtures the tests read are inside the repository', () => {
    const fixtures = readdirSync(join(ROOT, 'test', 'fixtures', 'alertmanager-0.25'));
    expect(fixtures).toEqual(
      expect.arrayContaining(['README.md', 'firing-single.json', 'resolved.json']),
    );
  });
});
