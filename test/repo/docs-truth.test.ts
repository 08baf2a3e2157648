import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { SETTINGS } from '../../src/config.js';
import { FAILURE_REASONS, SKIP_REASONS } from '../../src/core/types.js';

/** The sibling folder a user's clone does not have (spelled in two parts: see self-contained.test.ts). */
const SHARED = ['..', 'shared', ''].join('/');
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** What a reader copies from: the README, the docs, every manifest and example under deploy/. */
function documents(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? under(path) : /\.(md|ya?ml|env|json)$/.test(path) ? [path] : [];
    });
  return ['README.md', ...under('docs'), ...under('deploy')];
}

interface TokenTruth {
  secret: string;
  key: string;
  serviceFile: string;
  alertmanagerFile: string;
}

/** The one truth, read from the Deployment that mounts the token. */
function truthFromDeployment(): TokenTruth {
  const deployment = parse(readFileSync(join(ROOT, 'deploy/base/deployment.yaml'), 'utf8')) as {
    spec: {
      template: {
        spec: {
          volumes: { name: string; secret?: { secretName: string; items: { key: string }[] } }[];
          containers: { env: { name: string; value: string }[] }[];
        };
      };
    };
  };
  const pod = deployment.spec.template.spec;
  const volume = pod.volumes.find((v) => v.name === 'webhook-token')!.secret!;
  const serviceFile = pod.containers[0]!.env.find((e) => e.name === 'WEBHOOK_TOKEN_FILE')!.value;
  const key = volume.items[0]!.key;
  return {
    secret: volume.secretName,
    key,
    serviceFile,
    // Where prometheus-operator mounts a Secret listed in the Alertmanager's spec.secrets.
    alertmanagerFile: `/etc/alertmanager/secrets/${volume.secretName}/${key}`,
  };
}

/** Every mention of the token Secret, its key or its paths that disagrees with the truth. */
export function contradictions(text: string, truth: TokenTruth): string[] {
  const found: string[] = [];
  const expect = (mention: string, wanted: string) => {
    if (mention !== wanted) found.push(`${mention} (expected ${wanted})`);
  };
  for (const m of text.matchAll(/pod-rebalancer-webhook[\w-]*/g)) expect(m[0], truth.secret);
  for (const m of text.matchAll(/secret generic ([\w.-]+)/g)) expect(m[1]!, truth.secret);
  for (const m of text.matchAll(/--from-file=([\w.-]+)=/g)) expect(m[1]!, truth.key);
  for (const m of text.matchAll(/credentials_file:\s*['"]?([^\s'"`]+)/g)) {
    expect(m[1]!, truth.alertmanagerFile);
  }
  for (const m of text.matchAll(/\/etc\/alertmanager\/secrets\/([^/\s`'"]+)\/([\w.-]*)/g)) {
    // The generic `<name>` of the operator's convention is fine; a concrete name must be ours,
    // and a file in it our key (a mention of the folder alone names only the Secret).
    if (m[1] === '<name>') continue;
    if (m[2] === '') expect(m[1]!, truth.secret);
    else expect(m[0], truth.alertmanagerFile);
  }
  for (const m of text.matchAll(/\/var\/run\/secrets\/pod-rebalancer\/[^\s`'")]+/g)) {
    expect(m[0], truth.serviceFile);
  }
  for (const m of text.matchAll(/WEBHOOK_TOKEN_FILE[=:]\s*['"]?(\/[^\s'"`]+)/g)) {
    expect(m[1]!, truth.serviceFile);
  }
  for (const m of text.matchAll(/\.\.\/shared\/|(?<![\w/])shared\/fixtures/g)) {
    found.push(`${m[0]} (a folder no user has; the fixtures are in test/fixtures/)`);
  }
  return found;
}

describe('one truth in the docs: the webhook token Secret and its paths', () => {
  const truth = truthFromDeployment();

  it('reads the truth from the Deployment', () => {
    expect(truth).toEqual({
      secret: 'pod-rebalancer-webhook-token',
      key: 'token',
      serviceFile: '/var/run/secrets/pod-rebalancer/token',
      alertmanagerFile: '/etc/alertmanager/secrets/pod-rebalancer-webhook-token/token',
    });
  });

  it('finds a second Secret name, another key, another path and a reference to the steering folder', () => {
    const text = [
      'kubectl -n monitoring create secret generic pod-rebalancer-webhook --from-file=tok=./token',
      'credentials_file: /etc/alertmanager/secrets/pod-rebalancer-webhook/token',
      'mounted at `/etc/alertmanager/secrets/<name>/`',
      'WEBHOOK_TOKEN_FILE=/var/run/secrets/token',
      `replay ${SHARED}fixtures/alertmanager-0.25/firing-single.json`,
    ].join('\n');

    expect(contradictions(text, truth)).toEqual([
      'pod-rebalancer-webhook (expected pod-rebalancer-webhook-token)',
      'pod-rebalancer-webhook (expected pod-rebalancer-webhook-token)',
      'pod-rebalancer-webhook (expected pod-rebalancer-webhook-token)',
      'tok (expected token)',
      '/etc/alertmanager/secrets/pod-rebalancer-webhook/token (expected /etc/alertmanager/secrets/pod-rebalancer-webhook-token/token)',
      '/etc/alertmanager/secrets/pod-rebalancer-webhook/token (expected /etc/alertmanager/secrets/pod-rebalancer-webhook-token/token)',
      '/var/run/secrets/token (expected /var/run/secrets/pod-rebalancer/token)',
      `${SHARED} (a folder no user has; the fixtures are in test/fixtures/)`,
    ]);
  });

  it('README, docs/ and every deploy/ example name the same Secret, key and paths', () => {
    const offenders = documents().flatMap((file) =>
      contradictions(readFileSync(join(ROOT, file), 'utf8'), truth).map(
        (problem) => `${relative(ROOT, join(ROOT, file))}: ${problem}`,
      ),
    );

    expect(offenders).toEqual([]);
  });

  it('scans the README, the docs, the Alertmanager examples and the user overlay', () => {
    expect(documents()).toEqual(
      expect.arrayContaining([
        'README.md',
        'docs/operations.md',
        'deploy/alertmanager/alertmanager.yml',
        'deploy/alertmanager/alertmanager-config.yaml',
        'deploy/alertmanager/kube-prometheus-stack-values.yaml',
        'deploy/examples/kube-prometheus-stack/kustomization.yaml',
      ]),
    );
  });
});

describe('the README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  it('stays short: depth lives in docs/', () => {
    expect(readme.split('\n').length).toBeLessThan(200);
  });

  it('says the KUBECONFIG truth: KUBECONFIG, else ~/.kube/config, else in-cluster', () => {
    const row = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('| `KUBECONFIG`'));

    expect(row).toMatch(/~\/\.kube\/config.*in-cluster/);
  });

  it('documents every configuration variable the service reads in docs/configuration.md', () => {
    const documented = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');

    expect(Object.keys(SETTINGS).filter((name) => !documented.includes(`\`${name}\``))).toEqual([]);
  });

  it('links only to files that exist', () => {
    const links = [...readme.matchAll(/\]\(((?!https?:)[^)#]+)(#[^)]*)?\)/g)].map((m) => m[1]!);
    const missing = links.filter((link) => {
      try {
        readFileSync(join(ROOT, link));
        return false;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code !== 'EISDIR';
      }
    });
    expect(missing).toEqual([]);
  });
});

/** The reasons named in the first cell of the rows of the table under `### Outcome reasons`. */
export function reasonRows(markdown: string): string[] {
  const lines = markdown.split('\n');
  const heading = lines.findIndex((line) => line.trim() === '### Outcome reasons');
  if (heading < 0) return [];
  const rows: string[] = [];
  let inTable = false;
  for (const line of lines.slice(heading + 1)) {
    if (line.startsWith('#')) break;
    if (!line.startsWith('|')) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cell = /^\|\s*`([a-z-]+)`/.exec(line);
    if (cell) rows.push(cell[1]!);
  }
  return rows;
}

/** Every reason of the one vocabulary (src/core/types.ts) that has no row in the table. */
export function undocumentedReasons(markdown: string): string[] {
  const rows = new Set(reasonRows(markdown));
  return [...SKIP_REASONS, ...FAILURE_REASONS].filter((reason) => !rows.has(reason));
}

describe('one table of outcome reasons: docs/operations.md', () => {
  const operations = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');

  it('has a row for every skip and failure reason of src/core/types.ts', () => {
    expect(undocumentedReasons(operations)).toEqual([]);
  });

  it('notices a reason whose row is missing', () => {
    const withoutCooldown = operations
      .split('\n')
      .filter((line) => !line.startsWith('| `cooldown` |'))
      .join('\n');
    const withoutDeadline = operations
      .split('\n')
      .filter((line) => !line.startsWith('| `deadline-exceeded` |'))
      .join('\n');

    expect(undocumentedReasons(withoutCooldown)).toEqual(['cooldown']);
    expect(undocumentedReasons(withoutDeadline)).toEqual(['deadline-exceeded']);
    expect(undocumentedReasons('no such table')).toEqual([...SKIP_REASONS, ...FAILURE_REASONS]);
  });

  it('is the only reasons table: how-it-works.md and the README link to it', () => {
    const howItWorks = readFileSync(join(ROOT, 'docs/how-it-works.md'), 'utf8');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

    expect(howItWorks).not.toMatch(/^\| outcome \| reason \|/m);
    expect(howItWorks).toContain('(operations.md#outcome-reasons)');
    expect(readme).toContain('(docs/operations.md#outcome-reasons)');
  });
});
