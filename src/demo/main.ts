import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../adapters/logger.js';
import {
  InMemoryCluster,
  InMemoryCooldownStore,
  InMemoryRuleEngine,
  StaticMetricsSource,
} from '../adapters/memory.js';
import { loadConfig } from '../config.js';
import type { PodFacts } from '../core/types.js';
import { staticTokens } from '../http/tokens.js';
import type { Report } from '../report.js';
import { createService } from '../service.js';
import winston from 'winston';

const NAMESPACE = 'checkout';
const DEPLOYMENT = 'order-consumer';
const HOUR = 3_600_000;

/** A Kafka consumer group where partition assignment left one pod hot and one idle. */
const CPU: Record<string, number> = {
  'order-consumer-7d9f-a1': 1.85,
  'order-consumer-7d9f-b2': 0.62,
  'order-consumer-7d9f-c3': 0.58,
  'order-consumer-7d9f-d4': 0.66,
  'order-consumer-7d9f-e5': 0.6,
  'order-consumer-7d9f-f6': 0.04,
};

/**
 * A consumer group in two camps: half its pods on busy partitions, half on idle ones. Its stddev
 * is above the threshold, but restarting two pods cannot even it out.
 */
const TWO_CAMPS = 'invoice-consumer';
const TWO_CAMPS_CPU: Record<string, number> = Object.fromEntries(
  Array.from({ length: 12 }, (_, i) => [`${TWO_CAMPS}-5c8b-${i}`, i < 6 ? 0.95 : 0.12]),
);

/** The alert Alertmanager would post (payload version 4, as in test/fixtures). */
function exampleAlert(deployment = DEPLOYMENT) {
  return {
    version: '4',
    status: 'firing',
    receiver: 'pod-rebalancer',
    groupKey: `{}/{alertname="DeploymentCPUImbalance"}:{deployment="${deployment}", namespace="${NAMESPACE}"}`,
    truncatedAlerts: 0,
    alerts: [
      {
        status: 'firing',
        labels: {
          alertname: 'DeploymentCPUImbalance',
          namespace: NAMESPACE,
          deployment,
          severity: 'warning',
        },
        annotations: { summary: `CPU imbalance in ${NAMESPACE}/${deployment}` },
        startsAt: new Date(Date.now() - 12 * 60_000).toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: deployment === DEPLOYMENT ? 'd9600f0b57164017' : '4be1c0a7e2f95d31',
      },
    ],
  };
}

function simulatedCluster(now: Date) {
  const cluster = new InMemoryCluster();
  const metrics = new StaticMetricsSource();
  const pod = (name: string, startedAt: Date): PodFacts => ({
    name,
    uid: `uid-${name}`,
    phase: 'Running',
    ready: true,
    terminating: false,
    startedAt,
  });
  const deployment = {
    namespace: NAMESPACE,
    name: DEPLOYMENT,
    uid: 'uid-deployment',
    optedOut: false,
    rolloutInProgress: false,
    selector: { matchLabels: { app: DEPLOYMENT } },
  };
  cluster.addDeployment(
    deployment,
    Object.keys(CPU).map((name) => pod(name, new Date(now.getTime() - 2 * HOUR))),
  );
  for (const [name, cpu] of Object.entries(CPU)) metrics.cpu.set(`${NAMESPACE}/${name}`, cpu);
  cluster.addDeployment(
    {
      ...deployment,
      name: TWO_CAMPS,
      uid: 'uid-two-camps',
      selector: { matchLabels: { app: TWO_CAMPS } },
    },
    Object.keys(TWO_CAMPS_CPU).map((name) => pod(name, new Date(now.getTime() - 2 * HOUR))),
  );
  for (const [name, cpu] of Object.entries(TWO_CAMPS_CPU)) {
    metrics.cpu.set(`${NAMESPACE}/${name}`, cpu);
  }
  // The ReplicaSet replaces a removed pod at once; the newcomer is too young to count yet.
  let replacements = 0;
  cluster.onRemoved = (d, removed) => {
    const name = `${DEPLOYMENT}-7d9f-new${++replacements}`;
    cluster.pods.get(`${d.namespace}/${d.name}`)!.push(pod(name, new Date()));
    metrics.cpu.set(`${NAMESPACE}/${name}`, 0.3);
    process.stdout.write(`  [cluster] ${removed.name} removed, ReplicaSet starts ${name}\n`);
  };
  return { cluster, metrics };
}

async function post(
  url: string,
  token: string,
  body: unknown,
): Promise<{ status: number; report: Report }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, report: (await response.json()) as Report };
}

function show(title: string, status: number, report: Report): void {
  process.stdout.write(`\n${title}: HTTP ${status}\n`);
  for (const r of report.results) {
    process.stdout.write(
      `  ${r.namespace}/${r.deployment}: ${r.outcome} (${r.reason}) ${r.detail}\n`,
    );
    if (r.stats) {
      const s = r.stats;
      process.stdout.write(
        `  stats: ${s.count} pods, mean ${s.mean.toFixed(3)}, stddev ${s.stddev.toFixed(3)}, min ${s.min.toFixed(2)}, max ${s.max.toFixed(2)} cores\n`,
      );
    }
    for (const p of r.pods ?? [])
      process.stdout.write(
        `  pod ${p.name}: ${p.role} at ${p.cpu.toFixed(2)} cores -> ${p.result}\n`,
      );
  }
}

/**
 * `npm run demo`: the main job end to end with no cluster and no Prometheus. A simulated
 * Deployment with skewed CPU sits behind the same ports as a real one; the real HTTP app
 * receives the bundled alert twice: the first removes the hottest and the coldest pod, the
 * second falls inside the cooldown. A third alert names a Deployment in two camps, a spread two
 * restarts cannot fix: no-improvement-expected.
 */
async function main(): Promise<void> {
  const token = randomBytes(16).toString('hex');
  const config = loadConfig({
    PROMETHEUS_URL: 'http://prometheus.invalid:9090',
    WEBHOOK_TOKEN: token,
  });
  const { cluster, metrics } = simulatedCluster(new Date());
  const service = createService(config, {
    cluster,
    metrics,
    guards: metrics,
    // The simulated Prometheus's rules API: the rule has the alert active, so it is confirmed.
    rules: new InMemoryRuleEngine(cluster),
    cooldown: new InMemoryCooldownStore(),
    clock: { now: () => new Date() },
    logger: createLogger('warn', new winston.transports.Console({ silent: true })),
    tokens: staticTokens(token),
    identity: 'demo',
  });
  const server = service.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
  process.stdout.write(
    `pod-rebalancer demo: simulated Deployment ${NAMESPACE}/${DEPLOYMENT}, threshold ${config.threshold} cores\n`,
  );
  for (const [name, cpu] of Object.entries(CPU))
    process.stdout.write(`  ${name}  ${cpu.toFixed(2)} cores\n`);
  try {
    process.stdout.write(`\nPOST ${url} (DeploymentCPUImbalance, firing)\n`);
    const first = await post(url, token, exampleAlert());
    show('first notification', first.status, first.report);
    const again = await post(url, token, exampleAlert());
    show('repeat notification', again.status, again.report);
    process.stdout.write(
      `\n${NAMESPACE}/${TWO_CAMPS}: 6 pods at 0.95 cores, 6 at 0.12 (two camps)\n`,
    );
    const camps = await post(url, token, exampleAlert(TWO_CAMPS));
    show('two camps', camps.status, camps.report);
    process.stdout.write(`\nEvents on the Deployment:\n`);
    for (const e of cluster.events) process.stdout.write(`  ${e.type} ${e.reason}: ${e.message}\n`);
    process.stdout.write(
      `\nPods removed: ${cluster.removed.map((p) => p.name).join(', ') || 'none'}\n`,
    );
  } finally {
    server.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
