import { afterEach, describe, expect, it } from '@jest/globals';
import { provenanceCheck } from '../../src/operator/check-provenance.js';
import { FakePrometheus } from '../support/fake-prometheus.js';
import { freePort } from '../support/processes.js';

describe('check says which ALERT_PROVENANCE mode is on and whether the rule engine answers', () => {
  let prom: FakePrometheus | undefined;
  afterEach(async () => {
    await prom?.stop();
    prom = undefined;
  });
  const NAMES = ['DeploymentCPUImbalance'];

  it('when ALERT_PROVENANCE=off, then an ok line says every alert with the token is trusted, and nothing is asked', async () => {
    prom = await new FakePrometheus().start();

    const [line] = await provenanceCheck(
      { ALERT_PROVENANCE: 'off' },
      { url: prom.url, timeoutMs: 2000 },
      NAMES,
    );

    expect(line).toMatchObject({ ok: true, detail: expect.stringMatching(/^off: every alert/) });
    expect(prom.rulesRequests).toEqual([]);
  });

  it('when the rule engine at RULES_URL answers, then an ok line names it and counts the active alerts', async () => {
    prom = await new FakePrometheus().start();
    prom.fireRule({
      labels: { alertname: 'DeploymentCPUImbalance', namespace: 'a', deployment: 'b' },
      annotations: {},
    });

    const [line] = await provenanceCheck(
      { RULES_URL: prom.url },
      { url: 'http://127.0.0.1:9', timeoutMs: 2000 },
      NAMES,
    );

    expect(line).toEqual({
      check: 'alert provenance',
      ok: true,
      detail: `rules: alerts are confirmed by the rule engine at ${prom.url} (answers /api/v1/rules; 1 active alert(s) of DeploymentCPUImbalance now)`,
    });
  });

  it('when the rule engine cannot be reached, then the line fails with what to set', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;

    const [line] = await provenanceCheck({}, { url, timeoutMs: 2000 }, NAMES);

    expect(line).toMatchObject({
      ok: false,
      detail: expect.stringContaining(`rules: the rule engine at ${url} does not answer`),
      fix: expect.stringContaining('RULES_URL'),
    });
  });
});
