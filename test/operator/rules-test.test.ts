import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { runCommand } from '../../src/operator/command.js';
import { rulesCommand } from '../../src/operator/rules-test.js';
import { repoRoot } from '../rules/tools.js';
import { captureIo } from './cli.js';

const EXAMPLE = 'deploy/examples/kube-prometheus-stack';
const TEST_FILE = 'tests/checkout-order-consumer.test.yml';

/** `pod-rebalancer rules test ...` as a user runs it, from a copy of the example overlay. */
async function rulesTest(dir: string, args: string[]) {
  const io = captureIo({});
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const code = await runCommand(io, () => rulesCommand(['test', ...args], io));
    return { code, out: io.out(), err: io.err() };
  } finally {
    process.chdir(cwd);
  }
}

describe('pod-rebalancer rules test', () => {
  let overlay: string;
  beforeEach(() => {
    overlay = mkdtempSync(join(tmpdir(), 'pod-rebalancer-overlay-'));
    cpSync(join(repoRoot, EXAMPLE), overlay, { recursive: true });
  });
  afterEach(() => rmSync(overlay, { recursive: true, force: true }));

  it("when run on the example overlay's test, then promtool passes it against the PrometheusRule and the shipped default rule", async () => {
    const run = await rulesTest(overlay, [TEST_FILE]);

    expect(run.out).toContain(`Unit Testing:  ${TEST_FILE}`);
    expect(run.out).toContain('SUCCESS');
    expect(run.code).toBe(0);
  });

  it('when the PrometheusRule no longer says what the test expects, then it fails (exit 1) with promtool naming the case', async () => {
    const rule = join(overlay, 'checkout-order-consumer.yaml');
    writeFileSync(
      rule,
      readFileSync(rule, 'utf8').replace(
        'pod_rebalancer_threshold: "0.8"',
        'pod_rebalancer_threshold: "0.7"',
      ),
    );

    const run = await rulesTest(overlay, [TEST_FILE]);

    expect(run.out).toContain('FAILED');
    expect(run.out).toContain('above 0.8 cores the override fires');
    expect(run.code).toBe(1);
  });

  it('when the shipped default rule is left out, then the case proving the default stays away from the override cannot pass', async () => {
    const run = await rulesTest(overlay, ['--no-default-rule', TEST_FILE]);

    expect(run.out).toContain('FAILED');
    expect(run.code).toBe(1);
  });

  it('when the file is not a promtool test, then it is bad input (exit 2) naming the file', async () => {
    const run = await rulesTest(overlay, ['checkout-order-consumer.yaml']);

    expect(run.code).toBe(2);
    expect(run.err).toContain('checkout-order-consumer.yaml: not a promtool test file');
  });

  it('when promtool cannot be found, then it says how to install it (exit 2)', async () => {
    const run = await rulesTest(overlay, ['--promtool', '/nonexistent/promtool', TEST_FILE]);

    expect(run.code).toBe(2);
    expect(run.err).toContain('apt-get install prometheus');
  });
});
