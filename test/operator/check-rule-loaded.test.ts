import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { checkCommand } from '../../src/operator/check.js';
import { EXIT, runCommand } from '../../src/operator/command.js';
import { PrometheusHistory } from '../../src/operator/history.js';
import { judgeAlertRules } from '../../src/operator/rule-loaded.js';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { TOKEN } from '../support/harness.js';
import {
  freePort,
  requireProgram,
  startProgram,
  waitFor,
  waitForReady,
  type Program,
} from '../support/processes.js';
import { captureIo } from './cli.js';

const RULES = new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url).pathname;

/** A real Prometheus on loopback, with the given rule files loaded. */
async function startPrometheus(dir: string, ruleFiles: string[]): Promise<[Program, string]> {
  const port = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: {evaluation_interval: 1s}',
      `rule_files: [${ruleFiles.map((f) => `'${f}'`).join(', ')}]`,
    ].join('\n'),
  );
  const program = startProgram('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitForReady(`${url}/-/ready`, program);
  return [program, url];
}

describe('pod-rebalancer check asks the real Prometheus whether the alert rule is loaded', () => {
  let dir: string;
  let prometheus: Program | undefined;
  let kube: FakeKubeApiServer | undefined;
  beforeAll(() => requireProgram('prometheus', 'prometheus'));
  afterEach(async () => {
    await Promise.all([prometheus?.stop(), kube?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const ruleLine = async (ruleFiles: (dir: string) => string[], evaluated = false) => {
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-check-rules-'));
    let url: string;
    [prometheus, url] = await startPrometheus(dir, ruleFiles(dir));
    if (evaluated) {
      await waitFor(
        'the first evaluation of the rule',
        async () =>
          !(await new PrometheusHistory({ url, timeoutMs: 5000 }).alertRules()).some(
            (r) => r.health === 'unknown',
          ),
        20_000,
      );
    }
    kube = await new FakeKubeApiServer().start();
    const io = captureIo(
      { PROMETHEUS_URL: url, WEBHOOK_TOKEN: TOKEN },
      { kubeConfig: kube.kubeConfig() },
    );
    const code = await runCommand(io, () => checkCommand([], io));
    const lines = io.out().split('\n');
    return {
      code,
      line: lines.find((l) => l.includes('alert rule DeploymentCPUImbalance')),
      provenance: lines.find((l) => l.includes('alert provenance')),
    };
  };

  it('when Prometheus has loaded rules/pod-rebalancer.rules.yml, then the rule line is ok, and so is the provenance line (its rules API answers)', async () => {
    const { line, provenance } = await ruleLine(() => [RULES]);

    expect(provenance).toMatch(
      /^ok {4}alert provenance: rules: alerts are confirmed by the rule engine at http:\/\/127\.0\.0\.1:\d+ \(answers \/api\/v1\/rules; 0 active alert\(s\) of DeploymentCPUImbalance now\)$/,
    );
    expect(line).toMatch(
      /^ok {4}prometheus alert rule DeploymentCPUImbalance: loaded \(group [\w.-]+\), health (ok|not evaluated yet)$/,
    );
  }, 60_000);

  it('when Prometheus has not loaded the rule, then the line fails with the fix (the release label) and check exits 1', async () => {
    const { code, line } = await ruleLine(() => []);

    expect(code).toBe(EXIT.failure);
    expect(line).toMatch(
      /^FAIL {2}prometheus alert rule DeploymentCPUImbalance: not loaded in Prometheus -> .*release=<Helm release>.*deploy\/components\/kube-prometheus-stack/,
    );
  }, 60_000);

  it('when the loaded rule fails to evaluate, then the line fails and says where to read the error', async () => {
    const { line } = await ruleLine((d) => {
      // Parses, but fails at every evaluation: two series on the left match one on the right.
      const broken = join(d, 'broken.yml');
      writeFileSync(
        broken,
        [
          'groups:',
          '  - name: broken',
          '    rules:',
          '      - alert: DeploymentCPUImbalance',
          `        expr: '(vector(1) or label_replace(vector(1), "a", "x", "", "")) * on() vector(1)'`,
        ].join('\n'),
      );
      return [broken];
    }, true);

    expect(line).toMatch(
      /^FAIL {2}prometheus alert rule DeploymentCPUImbalance: loaded \(group broken\) but failing \(health err\) -> the rule does not evaluate/,
    );
  }, 60_000);
});

describe('judgeAlertRules', () => {
  it.each([
    [
      'loaded and healthy',
      [{ name: 'A', health: 'ok', query: 'x > 1', group: 'g' }],
      { ok: true, detail: 'loaded (group g), health ok' },
    ],
    [
      'loaded, not evaluated yet',
      [{ name: 'A', health: 'unknown', query: 'x > 1', group: 'g' }],
      { ok: true, detail: 'loaded (group g), health not evaluated yet' },
    ],
    ['absent', [], { ok: false, detail: 'not loaded in Prometheus' }],
    [
      'failing',
      [{ name: 'A', health: 'err', lastError: 'many-to-many', query: 'x', group: 'g' }],
      { ok: false, detail: 'loaded (group g) but failing: many-to-many' },
    ],
    [
      'rewritten by enforcedNamespaceLabel',
      [{ name: 'A', health: 'ok', query: 'x{namespace="pod-rebalancer"} > 1', group: 'g' }],
      { ok: false, detail: 'loaded, but rewritten to watch namespace "pod-rebalancer" only' },
    ],
  ])('when the rule is %s, then the line says so', (_case, loaded, expected) => {
    expect(judgeAlertRules(['A'], loaded)).toEqual([
      expect.objectContaining({ check: 'prometheus alert rule A', ...expected }),
    ]);
  });
});
