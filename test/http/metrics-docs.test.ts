import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import request from 'supertest';
import { createMetrics } from '../../src/metrics.js';
import { startHarness, type Harness } from '../support/harness.js';

const OPERATIONS = new URL('../../docs/operations.md', import.meta.url);
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** The metric names in the first column of docs/operations.md's metrics table. */
function documentedMetrics(): string[] {
  const text = readFileSync(OPERATIONS, 'utf8');
  const section = text.slice(
    text.indexOf('### Metrics'),
    text.indexOf('\n### ', text.indexOf('### Metrics') + 1),
  );
  return [...section.matchAll(/^\| `(pod_rebalancer_\w+)` \|/gm)].map((m) => m[1]!);
}

describe('pod_rebalancer_build_info', () => {
  it('when the service runs, then /metrics reports its version and Node.js version with the value 1', async () => {
    const h = await startHarness();
    try {
      const text = (await request(h.service.app).get('/metrics')).text;

      expect(text).toContain(
        `pod_rebalancer_build_info{version="${VERSION}",node_version="${process.version}"} 1`,
      );
    } finally {
      await h.stop();
    }
  });

  it('is registered on the registry it is given, with the build it is told', async () => {
    const registry = new Registry();
    createMetrics(registry, { version: '9.9.9', nodeVersion: 'v24.0.0' });

    expect(await registry.getSingleMetricAsString('pod_rebalancer_build_info')).toContain(
      'pod_rebalancer_build_info{version="9.9.9",node_version="v24.0.0"} 1',
    );
  });
});

describe("the operations guide's metrics table", () => {
  let h: Harness;
  let exposed: string[];
  beforeAll(async () => {
    h = await startHarness();
    exposed = (await h.service.registry.getMetricsAsJSON()).map((m) => m.name);
  });
  afterAll(() => h.stop());

  it('lists every metric of the service, and nothing it does not expose', () => {
    const ours = exposed.filter((name) => name.startsWith('pod_rebalancer_'));

    expect([...documentedMetrics()].sort()).toEqual([...ours].sort());
  });

  it("covers everything else with its sentence on prom-client's default process_* and nodejs_* metrics", () => {
    const others = exposed.filter((name) => !name.startsWith('pod_rebalancer_'));

    expect(others.filter((name) => !/^(process|nodejs)_/.test(name))).toEqual([]);
    expect(readFileSync(OPERATIONS, 'utf8')).toContain(
      "prom-client's default `process_*` and `nodejs_*` metrics",
    );
  });
});
