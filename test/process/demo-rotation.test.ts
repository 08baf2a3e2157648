import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { buildDist } from '../support/processes.js';

const DEMO = new URL('../../dist/demo/main.js', import.meta.url).pathname;

beforeAll(buildDist, 120_000);

describe('npm run demo: both rotations', () => {
  it('when run, then it shows both rotations: two pods together, then one by one with the second after the replacement is Ready', () => {
    const result = spawnSync('node', [DEMO], { encoding: 'utf8', timeout: 60_000 });

    expect(result.status).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/order-consumer-7d9f-a1: highest at 1\.85 cores -> evicted/);
    expect(out).toMatch(/order-consumer-7d9f-f6: lowest at 0\.04 cores -> evicted/);
    expect(out).toMatch(/rotation: 1 of 2, invoice-worker-5c4b-d4 follows/);
    const ready = out.indexOf('invoice-worker-new3 is Ready');
    const second = out.indexOf('rotation 2 of 2: invoice-worker-5c4b-d4 removed');
    expect(ready).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(ready);
    // The first Deployment's summary names only its own two pods, removed together.
    expect(out).toContain('Pods removed: order-consumer-7d9f-a1, order-consumer-7d9f-f6\n');
  });
});
