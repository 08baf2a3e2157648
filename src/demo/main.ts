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
/** A small Deployment whose rule asks for one-by-one rotation (`pod_rebalancer_rotation`). */
const SMALL = 'invoice-worker';
/** What the small Deployment's own rule says, and its alert carries. */
const SMALL_RULE = { pod_rebalancer_rotation: 'one-by-one' };
const HOUR = 3_600_000;
/** How long the simulated ReplicaSet's newcomer takes to turn Ready. */
const READY_AFTER_MS = 1500;

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

const SMALL_CPU: Record<string, number> = {
  'invoice-worker-5c4b-a1': 1.4,
  'invoice-worker-5c4b-b2': 0.5,
  'invoice-worker-5c4b-c3': 0.45,
  'invoice-worker-5c4b-d4': 0.05,
};

/** Alertmanager's fingerprint of each Deployment's alert (its label set). */
const FINGERPRINTS: Record<string, string> = {
  [DEPLOYMENT]: 'd9600f0b57164017',
  [TWO_CAMPS]: '4be1c0a7e2f95d31',
  [SMALL]: '5e1f0b57a9c64120',
};

/** The alert Alertmanager would post (payload version 4, as in test/fixtures). */
function exampleAlert(deployment = DEPLOYMENT, annotations: Record<string, string> = {}) {
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
        annotations: { summary: `CPU imbalance in ${NAMESPACE}/${deployment}`, ...annotations },
        startsAt: new Date(Date.now() - 12 * 60_000).toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: FINGERPRINTS[deployment],
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
  for (const [name, cpus] of [
    [DEPLOYMENT, CPU],
    [TWO_CAMPS, TWO_CAMPS_CPU],
    [SMALL, SMALL_CPU],
  ] as const) {
    const replicas = Object.keys(cpus).length;
    cluster.addDeployment(
      {
        namespace: NAMESPACE,
        name,
        uid: `uid-${name}`,
        optedOut: false,
        rolloutInProgress: false,
        selector: { matchLabels: { app: name } },
        desiredReplicas: replicas,
        availableReplicas: replicas,
      },
      Object.keys(cpus).map((p) => pod(p, new Date(now.getTime() - 2 * HOUR))),
    );
    for (const [p, cpu] of Object.entries(cpus)) metrics.cpu.set(`${NAMESPACE}/${p}`, cpu);
  }
  // The ReplicaSet replaces a removed pod at once; the newcomer turns Ready a moment later and
  // is too young to count in the statistics yet.
  let replacements = 0;
  cluster.onRemoved = (d, removed) => {
    const name = `${d.name}-new${++replacements}`;
    const newcomer = { ...pod(name, new Date()), ready: false };
    cluster.pods.get(`${d.namespace}/${d.name}`)!.push(newcomer);
    d.availableReplicas = (d.availableReplicas ?? 1) - 1;
    metrics.cpu.set(`${NAMESPACE}/${name}`, 0.3);
    process.stdout.write(`  [cluster] ${removed.name} removed, ReplicaSet starts ${name}\n`);
    setTimeout(() => {
      newcomer.ready = true;
      d.availableReplicas = (d.availableReplicas ?? 0) + 1;
      process.stdout.write(`  [cluster] ${name} is Ready\n`);
    }, READY_AFTER_MS);
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
 * receives the bundled alert twice: the first removes the hottest and the coldest pod together,
 * the second falls inside the cooldown. A third alert names a Deployment in two camps, a spread two
 * restarts cannot fix: no-improvement-expected. Then a small Deployment whose rule asks for
 * one-by-one rotation: the hottest pod goes at once, the coldest once its replacement is Ready.
 */
async function main(): Promise<void> {
  const token = randomBytes(16).toString('hex');
  const config = loadConfig({
    PROMETHEUS_URL: 'http://prometheus.invalid:9090',
    WEBHOOK_TOKEN: token,
  });
  const { cluster, metrics } = simulatedCluster(new Date());
  // The simulated Prometheus's rules API: the default rule has each Deployment's alert active,
  // and the small Deployment's own rule its alert with its policy, so every alert is confirmed.
  const rules = new InMemoryRuleEngine(cluster);
  rules.fire({
    labels: { alertname: 'DeploymentCPUImbalance', namespace: NAMESPACE, deployment: SMALL },
    annotations: SMALL_RULE,
  });
  const service = createService(
    config,
    {
      cluster,
      metrics,
      guards: metrics,
      rules,
      cooldown: new InMemoryCooldownStore(),
      clock: { now: () => new Date() },
      logger: createLogger('warn', new winston.transports.Console({ silent: true })),
      tokens: staticTokens(token),
      identity: 'demo',
    },
    { rotationCheckMs: 250 },
  );
  service.rotations.start();
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
    await rotateOneByOne(url, token, cluster);
  } finally {
    server.close();
    await service.rotations.stop();
  }
}

/** The small Deployment's rule says one-by-one: the hottest now, the coldest once it is safe. */
async function rotateOneByOne(url: string, token: string, cluster: InMemoryCluster) {
  process.stdout.write(
    `\nPOST ${url} (DeploymentCPUImbalance for ${NAMESPACE}/${SMALL}, pod_rebalancer_rotation: one-by-one)\n`,
  );
  const before = cluster.removed.length;
  const first = await post(url, token, exampleAlert(SMALL, SMALL_RULE));
  show('one-by-one notification', first.status, first.report);
  // Step 2 is the service's own: no notification, it waits for the replacement to be Ready.
  for (let waited = 0; cluster.removed.length < before + 2 && waited < 10_000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const second = cluster.removed[before + 1];
  process.stdout.write(
    second
      ? `  rotation 2 of 2: ${second.name} removed once the replacement was Ready\n`
      : '  rotation 2 of 2 did not happen within 10 s\n',
  );
  const events = cluster.events.slice(-2);
  for (const e of events) process.stdout.write(`  ${e.type} ${e.reason}: ${e.message}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
