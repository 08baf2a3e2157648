/**
 * A child process that serves what autocannon loads, so that the load generator and the server
 * do not share one event loop. `argv[2]` picks it:
 *
 * - `bare`: express parsing the same JSON body and answering a small JSON, nothing else;
 * - `app`: the real service (auth, schema, limits, pipeline, decision log line on stdout) on the
 *   in-memory adapters, one imbalanced Deployment, so after the first request every
 *   notification is inside the cooldown: the alert-storm path;
 * - `app-http`: the same, with the real Kubernetes client against the fake API server at
 *   `argv[3]` (the kubeconfig's server): the Deployment, its Lease and its autoscalers come from
 *   the watch caches, so once they have synced a notification makes no API call (the fakes
 *   counted 14 calls in a 16-second storm, the first lists and watches included).
 *
 * It reports its port over IPC, answers `rss` requests after a forced GC, and `cpu` requests with
 * the CPU time it has used (so the bench sees what each request costs the server itself).
 */
import type { RequestListener } from 'node:http';
import { setTimeout } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../src/adapters/logger.js';
import {
  InMemoryCluster,
  InMemoryCooldownStore,
  InMemoryRuleEngine,
  StaticMetricsSource,
} from '../src/adapters/memory.js';
import { loadConfig } from '../src/config.js';
import { staticTokens } from '../src/http/tokens.js';
import { createWebServer, realAdapters } from '../src/main.js';
import { createService } from '../src/service.js';
import { POD_CPU, TOKEN } from './shared.js';

function bare(): express.Express {
  const app = express();
  app.post('/webhook', express.json({ limit: '4mb' }), (req, res) => {
    res.json({ received: Array.isArray(req.body?.alerts) ? req.body.alerts.length : 0 });
  });
  return app;
}

function inMemory() {
  const cluster = new InMemoryCluster();
  const metrics = new StaticMetricsSource();
  const startedAt = new Date(Date.now() - 3_600_000);
  const pods = POD_CPU.map((cpu, i) => {
    metrics.cpu.set(`ns-0/app-0-${i}`, cpu);
    return {
      name: `app-0-${i}`,
      uid: `uid-${i}`,
      phase: 'Running',
      ready: true,
      terminating: false,
      startedAt,
    };
  });
  cluster.addDeployment(
    {
      namespace: 'ns-0',
      name: 'app-0',
      uid: 'uid-app-0',
      optedOut: false,
      rolloutInProgress: false,
      selector: { matchLabels: { app: 'app-0' } },
    },
    pods,
  );
  const config = loadConfig({ PROMETHEUS_URL: 'http://127.0.0.1:9', WEBHOOK_TOKEN: TOKEN });
  return createService(config, {
    cluster,
    metrics,
    guards: metrics,
    rules: new InMemoryRuleEngine(cluster),
    cooldown: new InMemoryCooldownStore(),
    clock: { now: () => new Date() },
    logger: createLogger('info'),
    tokens: staticTokens(TOKEN),
    identity: 'bench',
  }).app;
}

function overHttp(kubeUrl: string, promUrl: string) {
  const env = { PROMETHEUS_URL: promUrl, WEBHOOK_TOKEN: TOKEN };
  const config = loadConfig(env);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: kubeUrl, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'fake-kube-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  const adapters = realAdapters(config, env, kubeConfig);
  // As `serve` does: Deployments and Leases from watch caches, ready once they have synced.
  adapters.caches?.start();
  return {
    app: createService(config, adapters).app,
    ready: () => adapters.caches?.isSynced() ?? true,
  };
}

function appFor(mode: string | undefined): { app: RequestListener; ready: () => boolean } {
  if (mode === 'bare') return { app: bare(), ready: () => true };
  if (mode === 'app') return { app: inMemory(), ready: () => true };
  if (mode === 'app-http') return overHttp(process.argv[3]!, process.argv[4]!);
  throw new Error(`unknown mode ${mode}`);
}

const target = appFor(process.argv[2]);
const server = createWebServer(target.app, { logger: createLogger('error') });
server.listen(0, '127.0.0.1', () => {
  void (async () => {
    for (let i = 0; i < 1000 && !target.ready(); i++) await setTimeout(10);
    process.send!({ port: (server.address() as AddressInfo).port });
  })();
});
process.on('message', (message: { cmd: string }) => {
  if (message.cmd === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ cpuMicros: user + system });
    return;
  }
  if (message.cmd !== 'rss') return;
  // Only what is still referenced counts: collect first (the parent forks with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  process.send!({ rss, heapUsed });
});
process.on('disconnect', () => process.exit(0));
