import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { buildDist } from '../support/processes.js';

const DEMO = fileURLToPath(new URL('../../dist/demo/main.js', import.meta.url));

describe('npm run demo', () => {
  beforeAll(() => buildDist(), 120_000);

  it('when run, then it rebalances the skewed Deployment and skips the one in two camps as no-improvement-expected, with both figures', () => {
    const run = spawnSync('node', [DEMO], { encoding: 'utf8', timeout: 30_000 });

    expect(run.status).toBe(0);
    expect(run.stdout).toContain('checkout/order-consumer: rebalanced (imbalanced)');
    expect(run.stdout).toMatch(
      /checkout\/invoice-consumer: skipped \(no-improvement-expected\) .*CPU stddev 0\.415 cores to 0\.379, 8\.7% lower; at least 10% is needed/,
    );
    expect(run.stdout).toContain('Pods removed: order-consumer-7d9f-a1, order-consumer-7d9f-f6\n');
  });
});
