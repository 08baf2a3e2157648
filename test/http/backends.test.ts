import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { makeCa, makeLeaf, type CertFiles } from '../hardening/certs.js';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

// Each backend as it really behaves, driven through the real HTTP app, the real prometheus-query
// client and the real Kubernetes client against the fakes. The settings used are the ones
// docs/operations.md gives for that backend.

let h: Harness | undefined;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-backends-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const post = (body: unknown = payload()) => postWebhook(h!.service.app, body);

function leaseWrites(harness: Harness) {
  return harness.kube.requests.filter(
    (r) => r.path.includes('/leases') && ['POST', 'PUT', 'PATCH'].includes(r.method),
  );
}

/** Writes a secret file the way the kubelet updates a projected volume: a new file renamed over. */
function writeSecret(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
  return path;
}

const apiPayload = (deployment: string) =>
  payload([
    {
      labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment },
    },
  ]);

describe('Prometheus', () => {
  it('when the service queries, then it asks for a complete answer (partial_response=false, deny_partial_response=1) and acts on it', async () => {
    h = await startHarness();
    seedImbalanced(h);

    const res = await post();

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.prom.queries[0]!.params).toMatchObject({
      partial_response: 'false',
      deny_partial_response: '1',
    });
  });

  it('when the hottest pod has no sample (its scrape timed out) and nothing says so, then no pod is removed and the skip names it', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.cpu.delete('payments/api-hot');

    const res = await post();

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'incomplete-metrics',
      detail: expect.stringContaining('(api-hot)'),
    });
    expect(h.kube.removals).toEqual([]);
    expect(leaseWrites(h)).toEqual([]);
  });
});

describe('Thanos Querier', () => {
  it('when a store is down and Thanos answers 200 with warnings and without the hottest pod, then nothing is removed and Alertmanager is asked to retry', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.behaviour = {
      degraded: { style: 'thanos', missing: /^api-hot$/, ignoresDenyParam: true },
    };

    const res = await post();

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'prometheus-unavailable',
      detail: expect.stringMatching(
        /incomplete answer: the answer carries warnings: .*Unavailable/,
      ),
    });
    expect(h.kube.removals).toEqual([]);
    expect(leaseWrites(h)).toEqual([]);
  });

  it('when a store is down and Thanos honours partial_response=false (it answers 422 execution), then nothing is removed and Alertmanager retries', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.behaviour = { degraded: { style: 'thanos', missing: /^api-hot$/ } };

    const res = await post();

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({ reason: 'prometheus-unavailable' });
    expect(h.kube.removals).toEqual([]);
  });
});

describe('VictoriaMetrics', () => {
  it.each([
    ['answers isPartial: true without the hottest pod', true],
    ['refuses the partial answer we asked it not to give (503)', false],
  ])(
    'when a vmstorage node is down and vmselect %s, then nothing is removed and Alertmanager retries',
    async (_case, ignoresDenyParam) => {
      h = await startHarness();
      seedImbalanced(h);
      h.prom.behaviour = {
        degraded: { style: 'victoriametrics', missing: /^api-hot$/, ignoresDenyParam },
      };

      const res = await post();

      expect(res.status).toBe(503);
      expect(res.body.results[0]).toMatchObject({ reason: 'prometheus-unavailable' });
      expect(h.kube.removals).toEqual([]);
      expect(leaseWrites(h)).toEqual([]);
    },
  );
});

describe('Mimir / Cortex', () => {
  it('when the tenant header is not configured (Mimir answers 401 text/plain), then the report says prometheus-error with 200, not a 503 retried forever', async () => {
    h = await startHarness();
    seedImbalanced(h);
    h.prom.behaviour = { tenant: 'team-a' };

    const res = await post();

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      outcome: 'failed',
      reason: 'prometheus-error',
      detail: expect.stringContaining('(401): no org id'),
    });
    expect(res.body.results[0].retryable).toBeUndefined();
    expect(h.kube.removals).toEqual([]);
  });

  it('when PROMETHEUS_HEADERS carries X-Scope-OrgID, then the tenant is sent and the service acts', async () => {
    h = await startHarness({ PROMETHEUS_HEADERS: 'X-Scope-OrgID=team-a' });
    seedImbalanced(h);
    h.prom.behaviour = { tenant: 'team-a' };

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.prom.queries[0]!.tenant).toBe('team-a');
  });
});

describe('a bearer token that rotates (a projected service-account token)', () => {
  it('when the token file is replaced, then the next queries carry the new token, without a restart', async () => {
    let accepted = 'token-one';
    const tokenFile = writeSecret('prometheus-token', `${accepted}\n`);
    h = await startHarness({ PROMETHEUS_BEARER_TOKEN_FILE: tokenFile });
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'web');
    h.prom.behaviour = { authorization: () => `Bearer ${accepted}` };

    const first = await post(apiPayload('api'));
    accepted = 'token-two';
    writeSecret('prometheus-token', `${accepted}\n`);
    // The file is checked at most once a second: retry (each a fresh alert) until it is re-read.
    let second = await post(apiPayload('web'));
    for (let i = 0; i < 30 && second.body.results?.[0]?.outcome !== 'rebalanced'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      second = await post(apiPayload('web'));
    }

    expect(first.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(second.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    expect(h.prom.queries.at(-1)!.authorization).toBe('Bearer token-two');
    expect(JSON.stringify(h.logs.lines)).not.toContain('token-');
  });
});

describe('Grafana Cloud (basic auth: instance id and an access-policy token)', () => {
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('when PROMETHEUS_BASIC_AUTH_USER and _PASSWORD_FILE are set, then the service authenticates and acts', async () => {
    const passwordFile = writeSecret('grafana-cloud-token', 'glc_secret-one\n');
    h = await startHarness({
      PROMETHEUS_BASIC_AUTH_USER: '123456',
      PROMETHEUS_BASIC_AUTH_PASSWORD_FILE: passwordFile,
    });
    seedImbalanced(h);
    h.prom.behaviour = { authorization: () => basic('123456', 'glc_secret-one') };

    const res = await post();

    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });

  it('when the password is wrong (401), then prometheus-error with 200, and the password appears nowhere', async () => {
    const passwordFile = writeSecret('grafana-cloud-wrong', 'glc_wrong-secret\n');
    h = await startHarness({
      PROMETHEUS_BASIC_AUTH_USER: '123456',
      PROMETHEUS_BASIC_AUTH_PASSWORD_FILE: passwordFile,
    });
    seedImbalanced(h);
    h.prom.behaviour = { authorization: () => basic('123456', 'glc_right-secret') };

    const res = await post();

    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ reason: 'prometheus-error' });
    const everything = JSON.stringify(res.body) + h.logs.lines.join('\n');
    expect(everything).not.toContain('glc_wrong-secret');
    expect(everything).not.toContain(Buffer.from('123456:glc_wrong-secret').toString('base64'));
  });
});

describe('an https Prometheus signed by a private CA', () => {
  let ca: CertFiles;
  let server: CertFiles;
  beforeAll(() => {
    ca = makeCa(dir, 'monitoring-ca');
    server = makeLeaf(dir, 'prometheus', ca, { usage: 'server' });
  });

  const tls = () => ({
    cert: readFileSync(server.cert, 'utf8'),
    key: readFileSync(server.key, 'utf8'),
  });

  it('when PROMETHEUS_CA_FILE names the CA, then the service verifies the certificate and acts', async () => {
    h = await startHarness({ PROMETHEUS_CA_FILE: ca.cert }, { prometheusTls: tls() });
    seedImbalanced(h);

    const res = await post();

    expect(h.prom.url).toMatch(/^https:/);
    expect(res.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });

  it('when the CA file is replaced (the CA rotated), then the new CA is trusted without a restart', async () => {
    const other = makeCa(dir, 'old-ca');
    const caFile = writeSecret('prometheus-ca.crt', readFileSync(other.cert, 'utf8'));
    h = await startHarness({ PROMETHEUS_CA_FILE: caFile }, { prometheusTls: tls() });
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'payments', 'web');

    const before = await post(apiPayload('api'));
    writeSecret('prometheus-ca.crt', readFileSync(ca.cert, 'utf8'));
    let after = await post(apiPayload('web'));
    for (let i = 0; i < 30 && after.body.results?.[0]?.outcome !== 'rebalanced'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await post(apiPayload('web'));
    }

    expect(before.status).toBe(503);
    expect(after.body.results[0]).toMatchObject({ outcome: 'rebalanced' });
  });

  it('when no CA is configured, then the certificate is not trusted and nothing is removed', async () => {
    h = await startHarness({}, { prometheusTls: tls() });
    seedImbalanced(h);

    const res = await post();

    expect(res.status).toBe(503);
    expect(res.body.results[0]).toMatchObject({ reason: 'prometheus-unavailable' });
    expect(h.prom.queries).toEqual([]);
    expect(h.kube.removals).toEqual([]);
  });
});
