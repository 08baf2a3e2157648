import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { listRuleFiles, readRuleGroups, repoRoot } from './tools.js';

const REPOSITORY_BLOB = 'https://github.com/pod-rebalancer/pod-rebalancer/blob/main/';

/** The anchor GitHub gives a Markdown heading. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdownFile: string): Set<string> {
  const text = readFileSync(join(repoRoot, markdownFile), 'utf8');
  const headings = text.split('\n').filter((line) => /^#{1,6} /.test(line));
  return new Set(headings.map((line) => githubAnchor(line.replace(/^#+ /, ''))));
}

describe('the runbook_url of every alert', () => {
  const alerts = listRuleFiles()
    .flatMap(readRuleGroups)
    .flatMap((group) => group.rules)
    .filter((rule) => rule.alert !== undefined);

  const cases = alerts.map((rule) => ({
    alert: rule.alert ?? '',
    url: rule.annotations?.runbook_url ?? '',
  }));

  it.each(cases)('$alert links to a heading that exists in this repository', ({ url }) => {
    expect(url.startsWith(REPOSITORY_BLOB)).toBe(true);
    const [file = '', anchor = ''] = url.slice(REPOSITORY_BLOB.length).split('#');

    expect(existsSync(join(repoRoot, file))).toBe(true);
    expect([...anchorsOf(file)]).toContain(anchor);
  });
});
