import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './render.js';

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Splits a Dockerfile into its FROM stages, joining `\` continuations and dropping comments. */
function parseDockerfile(text: string): Stage[] {
  const logicalLines = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const stages: Stage[] = [];
  for (const line of logicalLines) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      const [image = '', , name] = args.split(/\s+/).filter((word) => !word.startsWith('--'));
      stages.push({ image, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

function instructions(stage: Stage | undefined, keyword: string): string[] {
  return (stage?.instructions ?? []).filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** A COPY's `--from` stage (undefined for the build context), sources and destination. */
function parseCopy(args: string): { from: string | undefined; sources: string[] } {
  const words = args.split(/\s+/);
  const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((word) => !word.startsWith('--'));
  return { from, sources: paths.slice(0, -1) };
}

/** The command an exec-form CMD or ENTRYPOINT runs; undefined for the shell form. */
function execForm(args: string | undefined): string[] | undefined {
  if (args === undefined || !args.startsWith('[')) return undefined;
  return JSON.parse(args) as string[];
}

/** Whether .dockerignore keeps a path out of the build context (last matching pattern wins). */
function ignoredByDockerignore(path: string, patterns: string[]): boolean {
  let ignored = false;
  for (const line of patterns) {
    const negated = line.startsWith('!');
    const pattern = globToRegExp((negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, ''));
    const segments = path.split('/');
    // Docker excludes a file when the pattern matches it or any directory above it.
    const matches = segments.some((_, i) => pattern.test(segments.slice(0, i + 1).join('/')));
    if (matches) ignored = !negated;
  }
  return ignored;
}

function globToRegExp(glob: string): RegExp {
  const source = glob
    .split('**')
    .map((part) =>
      part
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]'),
    )
    .join('.*');
  return new RegExp(`^${source}$`);
}

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1);
const stageNamed = (name: string | undefined) => stages.find((stage) => stage.name === name);
const runtimeCopies = instructions(runtime, 'COPY').map(parseCopy);
const ignorePatterns = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

describe('Dockerfile', () => {
  it('compiles in a build stage, so the compiler and dev dependencies stay out of the runtime', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages
      .slice(0, -1)
      .find((stage) => instructions(stage, 'RUN').some((run) => /\bnpm run build\b/.test(run)));
    expect(instructions(build, 'RUN').some((run) => /\bnpm ci\b(?!.*--omit=dev)/.test(run))).toBe(
      true,
    );
    expect(instructions(runtime, 'RUN')).toEqual([]);
    const fromBuild = runtimeCopies.filter((copy) => copy.from === build?.name);
    expect(fromBuild.flatMap((copy) => copy.sources)).toEqual(['/app/dist']);
  });

  it('builds and runs on Node.js 24 LTS, the major package.json "engines" names first, with a pinned build tag', () => {
    const majors = stages.map((stage) => {
      const node = /^node:(\d+)\.\d+\.\d+-[a-z]+(-slim)?$/.exec(stage.image);
      const distroless = /^gcr\.io\/distroless\/nodejs(\d+)-debian\d+:/.exec(stage.image);
      return { image: stage.image, major: (node ?? distroless)?.[1] };
    });
    // Every stage is a Node image whose major is known: node:X.Y.Z (pinned) or distroless nodejsX.
    expect(majors.filter((m) => m.major === undefined)).toEqual([]);
    expect(new Set(majors.map((m) => m.major))).toEqual(new Set(['24']));
    const engines = (
      JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
        engines: { node: string };
      }
    ).engines.node;
    expect(engines).toMatch(/\^24\./);
  });

  it('installs the runtime node_modules with `npm ci --omit=dev`, production dependencies only', () => {
    const modules = runtimeCopies.filter((copy) =>
      copy.sources.some((source) => source.includes('node_modules')),
    );
    expect(modules).toHaveLength(1);
    const installs = instructions(stageNamed(modules[0]?.from), 'RUN').filter((run) =>
      /\bnpm (ci|install|i)\b/.test(run),
    );
    expect(installs.length).toBeGreaterThan(0);
    expect(installs.every((run) => /\bnpm ci\b.*--omit=dev/.test(run))).toBe(true);
  });

  it('runs the final stage as a non-root numeric user', () => {
    const user = instructions(runtime, 'USER').at(-1);
    if (user === undefined) {
      // Without USER, only distroless' :nonroot tags run as 65532.
      expect(runtime?.image).toMatch(/^gcr\.io\/distroless\/.*:(debug-)?nonroot$/);
    } else {
      const [, uid] = /^(\d+)(?::\d+)?$/.exec(user) ?? [];
      expect({ user, numeric: uid !== undefined }).toEqual({ user, numeric: true });
      expect(Number(uid)).toBeGreaterThan(0);
    }
  });

  it('starts `dist/cli.js serve` in exec form, so node is PID 1 and receives SIGTERM itself', () => {
    const entrypoint = instructions(runtime, 'ENTRYPOINT').at(-1);
    const cmd = execForm(instructions(runtime, 'CMD').at(-1));
    expect(cmd).toBeDefined();
    const command = [...(execForm(entrypoint) ?? []), ...(cmd ?? [])];
    if (entrypoint === undefined) {
      // The distroless nodejs images' entrypoint is node, so CMD is node's arguments.
      expect(runtime?.image).toMatch(/^gcr\.io\/distroless\/nodejs\d+/);
    } else {
      expect(execForm(entrypoint)).toBeDefined();
    }
    const script = command.findIndex((word) => word.endsWith('dist/cli.js'));
    expect(script).toBeGreaterThanOrEqual(0);
    expect(command[script + 1]).toBe('serve');
    expect(command.some((word) => /^(sh|bash|npm)$|\/(sh|bash|npm)$/.test(word))).toBe(false);
  });

  it('ships package.json, whose "type": "module" makes Node load dist/ as ES modules', () => {
    expect(runtimeCopies.some((copy) => copy.sources.includes('package.json'))).toBe(true);
  });
});

describe('.dockerignore', () => {
  it('lets through every file the Dockerfile copies from the build context', () => {
    const sources = stages
      .flatMap((stage) => instructions(stage, 'COPY').map(parseCopy))
      .filter((copy) => copy.from === undefined)
      .flatMap((copy) => copy.sources);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((source) => ignoredByDockerignore(source, ignorePatterns))).toEqual([]);
  });

  it('keeps local builds, dependencies, git history and secrets out of the build context', () => {
    const private_ = ['node_modules/express/index.js', 'dist/cli.js', '.git/config', '.env'];
    expect(private_.filter((path) => !ignoredByDockerignore(path, ignorePatterns))).toEqual([]);
  });
});
