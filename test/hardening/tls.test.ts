import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/adapters/logger.js';
import { createWebServer } from '../../src/main.js';
import type { TlsFiles } from '../../src/http/tls.js';
import { payload } from '../http/payload.js';
import { CapturedLogs, startHarness, TOKEN, type Harness } from '../support/harness.js';
import {
  buildDist,
  freePort,
  killIfRunning,
  requireProgram,
  startProgram,
  type Program,
  waitFor,
  waitForReady as waitForProgram,
} from '../support/processes.js';
import { makeCa, makeLeaf, type CertFiles } from './certs.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

let dir: string;
let ca: CertFiles;
let serverA: CertFiles;
let serverB: CertFiles;
const clients: Record<'valid' | 'foreign' | 'expired', CertFiles> = {} as never;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-tls-'));
  ca = makeCa(dir, 'ca');
  const otherCa = makeCa(dir, 'other-ca');
  serverA = makeLeaf(dir, 'server-a', ca, { usage: 'server' });
  serverB = makeLeaf(dir, 'server-b', ca, { usage: 'server' });
  clients.valid = makeLeaf(dir, 'alertmanager', ca, { usage: 'client' });
  clients.foreign = makeLeaf(dir, 'foreign', otherCa, { usage: 'client' });
  clients.expired = makeLeaf(dir, 'expired', ca, {
    usage: 'client',
    notBefore: '20200101000000Z',
    notAfter: '20200102000000Z',
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The files the server is configured with; a rotation overwrites them in place. */
function liveFiles(name: string, withClientCa: boolean): TlsFiles {
  const files = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  copyFileSync(serverA.cert, files.certFile);
  copyFileSync(serverA.key, files.keyFile);
  return withClientCa ? { ...files, clientCaFile: ca.cert } : files;
}

interface Answer {
  status: number;
  body: string;
  serverSerial: string;
}

/** One HTTPS request on a fresh connection, trusting only our CA, optionally with a client cert. */
function httpsCall(
  port: number,
  options: { path?: string; client?: CertFiles; body?: unknown } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/healthz',
        method: options.body ? 'POST' : 'GET',
        headers: options.body
          ? { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
          : {},
        ca: readFileSync(ca.cert),
        cert: options.client && readFileSync(options.client.cert),
        key: options.client && readFileSync(options.client.key),
        agent: false,
      },
      (res) => {
        const serverSerial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
          .serialNumber;
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serverSerial }));
      },
    );
    req.on('error', reject);
    req.end(options.body ? JSON.stringify(options.body) : undefined);
  });
}

function serialOf(files: CertFiles): string {
  const out = spawnSync('openssl', ['x509', '-noout', '-serial', '-in', files.cert], {
    encoding: 'utf8',
  });
  return out.stdout.trim().replace(/^serial=/, '');
}

describe('HTTPS on the webhook, in process', () => {
  let h: Harness;
  let server: Server | undefined;
  let port = 0;
  let logs: CapturedLogs;

  async function start(files: TlsFiles): Promise<void> {
    h = await startHarness();
    logs = new CapturedLogs();
    server = createWebServer(h.service.app, {
      logger: createLogger('info', logs.transport()),
      tls: files,
      tlsRecheckMs: 50,
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  }

  afterEach(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
      server = undefined;
    }
    await h?.stop();
  });

  it('when a client certificate signed by TLS_CLIENT_CA_FILE is presented, then the webhook answers', async () => {
    await start(liveFiles('mtls-valid', true));

    const answer = await httpsCall(port, {
      path: '/webhook',
      client: clients.valid,
      body: payload(),
    });

    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).results[0]).toMatchObject({ reason: 'not-found' });
  });

  it.each([
    ['no client certificate', undefined, 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'],
    ['a certificate from another CA', 'foreign', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['an expired certificate from the right CA', 'expired', 'CERT_HAS_EXPIRED'],
  ] as const)(
    'when a client presents %s, then the handshake is refused before any HTTP, and the reason is logged',
    async (_case, client, reason) => {
      await start(liveFiles(`mtls-${client ?? 'none'}`, true));

      const call = httpsCall(port, {
        path: '/webhook',
        client: client && clients[client],
        body: payload(),
      });

      await expect(call).rejects.toThrow();
      await waitFor('the refusal to be logged', () => logs.lines.length > 0, 2000, 10);
      expect(logs.entries).toEqual([
        expect.objectContaining({ message: 'TLS handshake refused', reason }),
      ]);
      expect(h.kube.requests).toEqual([]);
    },
  );

  it('when TLS_CLIENT_CA_FILE is unset, then HTTPS is served to clients without a certificate', async () => {
    await start(liveFiles('tls-only', false));

    const answer = await httpsCall(port);

    expect(answer.status).toBe(200);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('when the server certificate files are replaced, then new connections get the new certificate without a restart', async () => {
    const files = liveFiles('rotation', false);
    await start(files);
    const before = await httpsCall(port);

    copyFileSync(serverB.key, files.keyFile);
    copyFileSync(serverB.cert, files.certFile);
    await waitFor(
      'the new certificate to be served',
      async () => (await httpsCall(port)).serverSerial === serialOf(serverB),
      3000,
      50,
    );

    expect(before.serverSerial).toBe(serialOf(serverA));
    expect(logs.entries.map((e) => e.message)).toContain('TLS certificate reloaded');
  });

  it('when only the certificate of a rotation has been written so far, then the previous pair is kept until the key follows', async () => {
    const files = liveFiles('half-rotation', false);
    await start(files);

    copyFileSync(serverB.cert, files.certFile);
    await waitFor(
      'the mismatch to be noticed',
      () => logs.entries.some((e) => String(e.message).startsWith('TLS files changed')),
      3000,
      20,
    );
    const during = await httpsCall(port);
    copyFileSync(serverB.key, files.keyFile);
    await waitFor(
      'the completed rotation to be served',
      async () => (await httpsCall(port)).serverSerial === serialOf(serverB),
      3000,
      50,
    );

    expect(during).toMatchObject({ status: 200, serverSerial: serialOf(serverA) });
    expect(
      logs.entries.filter((e) => String(e.message).startsWith('TLS files changed')),
    ).toHaveLength(1);
  });
});

describe('pod-rebalancer serve with TLS, as a process', () => {
  let child: ChildProcess | undefined;
  let h: Harness;

  beforeAll(buildDist, 120_000);

  afterEach(async () => {
    await killIfRunning(child);
    child = undefined;
    await h?.stop();
  });

  function env(files: TlsFiles, port: number): NodeJS.ProcessEnv {
    writeFileSync(join(dir, 'kubeconfig'), h.kube.kubeConfigText());
    return {
      PATH: process.env.PATH,
      PORT: String(port),
      PROMETHEUS_URL: h.prom.url,
      WEBHOOK_TOKEN: TOKEN,
      KUBECONFIG: join(dir, 'kubeconfig'),
      TLS_CERT_FILE: files.certFile,
      TLS_KEY_FILE: files.keyFile,
      ...(files.clientCaFile ? { TLS_CLIENT_CA_FILE: files.clientCaFile } : {}),
    };
  }

  it('when TLS_* are set, then it serves mutual TLS and follows a rotated server certificate without a restart', async () => {
    h = await startHarness();
    const files = liveFiles('serve', true);
    const port = await freePort();
    child = spawn('node', [CLI, 'serve'], { env: env(files, port), stdio: 'ignore' });
    await waitFor(
      'the service to answer over mutual TLS',
      () =>
        httpsCall(port, { path: '/readyz', client: clients.valid }).then(
          () => true,
          () => false,
        ),
      10_000,
      100,
    );

    const withoutCertificate = await httpsCall(port, { path: '/readyz' }).then(
      (answer) => `answered ${answer.status}`,
      (error: Error) => error.message,
    );
    copyFileSync(serverB.key, files.keyFile);
    copyFileSync(serverB.cert, files.certFile);
    await waitFor(
      'the rotated certificate',
      async () =>
        (await httpsCall(port, { path: '/readyz', client: clients.valid })).serverSerial ===
        serialOf(serverB),
      5000,
      100,
    );

    expect(withoutCertificate).toMatch(/certificate required|socket hang up|ECONNRESET/);
    expect(child.exitCode).toBeNull();
  }, 30_000);

  it('when TLS_CERT_FILE cannot be read, then it exits 2 naming the variable', async () => {
    h = await startHarness();
    const files = { certFile: join(dir, 'missing.crt'), keyFile: serverA.key };

    const result = spawnSync('node', [CLI, 'serve'], {
      env: env(files, await freePort()),
      encoding: 'utf8',
    });

    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /^pod-rebalancer: TLS_CERT_FILE: cannot read the file \(ENOENT\)$/m,
    );
  });
});

describe('the real Alertmanager presenting its client certificate', () => {
  let h: Harness;
  let server: Server | undefined;
  let alertmanager: Program | undefined;

  afterAll(async () => {
    await alertmanager?.stop();
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
    }
    await h?.stop();
  });

  it('delivers through a valid certificate and is refused in the handshake without one, with another CA and when expired', async () => {
    requireProgram('prometheus-alertmanager', 'prometheus-alertmanager');
    h = await startHarness();
    const capture = new CapturedLogs();
    server = createWebServer(h.service.app, {
      logger: createLogger('info', capture.transport()),
      tls: liveFiles('alertmanager-mtls', true),
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const amPort = await freePort();
    writeFileSync(join(dir, 'token'), TOKEN);
    const receiver = (name: string, client?: CertFiles) => [
      `  - name: ${name}`,
      '    webhook_configs:',
      `      - url: https://127.0.0.1:${port}/webhook`,
      '        http_config:',
      `          authorization: {type: Bearer, credentials_file: '${join(dir, 'token')}'}`,
      client
        ? `          tls_config: {ca_file: '${ca.cert}', cert_file: '${client.cert}', key_file: '${client.key}'}`
        : `          tls_config: {ca_file: '${ca.cert}'}`,
    ];
    const cases = ['valid', 'none', 'foreign', 'expired'] as const;
    writeFileSync(
      join(dir, 'alertmanager.yml'),
      [
        'route:',
        '  receiver: valid',
        '  group_by: [deployment]',
        '  group_wait: 0s',
        '  group_interval: 1s',
        '  repeat_interval: 1h',
        '  routes:',
        ...cases.map((c) => `    - {matchers: ['deployment="${c}"'], receiver: ${c}}`),
        'receivers:',
        ...receiver('valid', clients.valid),
        ...receiver('none'),
        ...receiver('foreign', clients.foreign),
        ...receiver('expired', clients.expired),
      ].join('\n'),
    );
    alertmanager = startProgram('prometheus-alertmanager', [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ]);
    await waitForProgram(`http://127.0.0.1:${amPort}/-/ready`, alertmanager);

    const posted = await fetch(`http://127.0.0.1:${amPort}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        cases.map((deployment) => ({
          labels: { alertname: 'DeploymentCPUImbalance', namespace: 'tls', deployment },
          startsAt: new Date().toISOString(),
        })),
      ),
    });
    expect(posted.status).toBe(200);
    const refusals = () =>
      new Set(
        capture.entries.filter((e) => e.message === 'TLS handshake refused').map((e) => e.reason),
      );
    await waitFor(
      `the valid delivery and three kinds of refusal (${alertmanager.output().slice(-1500)})`,
      () =>
        refusals().size === 3 &&
        h.logs.entries.some((e) => e.message === 'decision' && e.deployment === 'valid'),
      30_000,
    );

    expect(refusals()).toEqual(
      new Set([
        'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        'CERT_HAS_EXPIRED',
      ]),
    );
    expect(h.logs.entries.filter((e) => e.message === 'decision').map((e) => e.deployment)).toEqual(
      ['valid'],
    );
  }, 60_000);
});
