import request from 'supertest';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger } from '../../src/adapters/logger.js';
import type { WatchTiming } from '../../src/adapters/watch-cache.js';
import { loadConfig } from '../../src/config.js';
import { realAdapters } from '../../src/main.js';
import type { Clock } from '../../src/ports.js';
import { createService, type Service, type WatchCaches } from '../../src/service.js';
import { FakeKubeApiServer } from './fake-kube.js';
import { FakePrometheus } from './fake-prometheus.js';

export const TOKEN = 'test-webhook-token-5b1f0c';
const HOUR = 3_600_000;

/** Log lines written by the service, parsed. */
export class CapturedLogs {
  readonly lines: string[] = [];
  get entries(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
  transport(): winston.transport {
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.lines.push(chunk.toString().trim());
        done();
      },
    });
    return new winston.transports.Stream({ stream });
  }
}

export interface Harness {
  kube: FakeKubeApiServer;
  prom: FakePrometheus;
  logs: CapturedLogs;
  service: Service;
  /**
   * Another replica of the service against the same fakes (a second process in a cluster),
   * with its own clock when given one (a node whose clock is off).
   */
  replica(name: string, clock?: Clock): Service;
  stop(): Promise<void>;
}

/** POSTs `body` to the webhook with the token Alertmanager sends, as it would. */
export function postWebhook(app: Harness['service']['app'], body: unknown) {
  return request(app)
    .post('/webhook')
    .set('Authorization', `Bearer ${TOKEN}`)
    .send(body as object);
}

/**
 * The service wired exactly as main.ts wires it (real Kubernetes client, real Prometheus
 * client, real HTTP app) against a fake API server and a fake Prometheus on 127.0.0.1.
 */
export async function startHarness(
  env: Record<string, string> = {},
  /** watchCaches: read Deployments and Leases through watch caches, as `serve` does. */
  options: {
    clock?: Clock;
    prometheusTls?: { cert: string; key: string };
    watchCaches?: boolean;
    /** Shortens the watch caches' timing (liveness, backoff, polling). */
    watchTiming?: Partial<WatchTiming>;
  } = {},
): Promise<Harness> {
  const kube = await new FakeKubeApiServer().start();
  const prom = await new FakePrometheus().start(0, options.prometheusTls);
  const logs = new CapturedLogs();
  const fullEnv = {
    PROMETHEUS_URL: prom.url,
    WEBHOOK_TOKEN: TOKEN,
    PROMETHEUS_TIMEOUT: '2s',
    ...env,
  };
  const config = loadConfig(fullEnv);
  const started: WatchCaches[] = [];
  const build = (identity: string, ownClock?: Clock) => {
    const clock = ownClock ?? options.clock;
    const adapters = realAdapters(config, { ...fullEnv, POD_NAME: identity }, kube.kubeConfig(), {
      watchTiming: options.watchTiming,
      clock,
    });
    const { caches } = adapters;
    if (options.watchCaches && caches) {
      caches.start();
      started.push(caches);
    }
    return createService(config, {
      ...adapters,
      // Without watch caches every read goes to the fake API server, as the tests arrange it.
      caches: options.watchCaches ? caches : undefined,
      logger: createLogger(config.logLevel, logs.transport()),
      ...(clock ? { clock } : {}),
    });
  };
  return {
    kube,
    prom,
    logs,
    service: build('replica-a'),
    replica: build,
    async stop() {
      await Promise.all(started.map((caches) => caches.stop()));
      await Promise.all([kube.stop(), prom.stop()]);
    },
  };
}

export interface SeedOptions {
  namespace: string;
  name: string;
  /** CPU in cores by pod name; a pod with `undefined` has no sample. */
  cpu: Record<string, number | undefined>;
  annotations?: Record<string, string>;
  /** Overrides of individual pods' status (e.g. not ready, young). */
  pods?: Record<
    string,
    { phase?: string; ready?: boolean; startedAgoMs?: number; terminating?: boolean }
  >;
  rolloutInProgress?: boolean;
  /** The pod template's priorityClassName (and the priority admission resolves it to). */
  priorityClassName?: string;
  priority?: number;
}

const TEMPLATE_HASH = '7d9f5c';

/** The labels and owner that make a pod one of the Deployment's (through its ReplicaSet). */
export function ownedBy(deployment: string) {
  return {
    labels: { app: deployment, 'pod-template-hash': TEMPLATE_HASH },
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: `${deployment}-${TEMPLATE_HASH}`,
        uid: `uid-rs-${deployment}`,
        controller: true,
      },
    ],
  };
}

/** Creates a Deployment with its pods in the fake API server and their CPU in the fake Prometheus. */
export function seedDeployment(h: Pick<Harness, 'kube' | 'prom'>, options: SeedOptions): void {
  const { namespace, name } = options;
  const replicas = Object.keys(options.cpu).length;
  h.kube.addDeployment({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      namespace,
      name,
      uid: `uid-deploy-${name}`,
      generation: 2,
      annotations: options.annotations ?? {},
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: 'app', image: 'app' }],
          priorityClassName: options.priorityClassName,
          priority: options.priority,
        },
      },
    },
    status: {
      observedGeneration: 2,
      replicas,
      updatedReplicas: options.rolloutInProgress ? replicas - 1 : replicas,
      readyReplicas: replicas,
    },
  });
  for (const [pod, cpu] of Object.entries(options.cpu)) {
    const o = options.pods?.[pod] ?? {};
    h.kube.addPod({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        namespace,
        name: pod,
        uid: `uid-${pod}`,
        ...ownedBy(name),
        ...(o.terminating ? { deletionTimestamp: new Date().toISOString() } : {}),
      },
      status: {
        phase: o.phase ?? 'Running',
        startTime: new Date(Date.now() - (o.startedAgoMs ?? HOUR)).toISOString(),
        conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
      },
    });
    if (cpu !== undefined) h.prom.cpu.set(`${namespace}/${pod}`, cpu);
  }
}

/** payments/api with one hot pod (api-hot) and one idle pod (api-cold): stddev ≈ 0.54. */
export function seedImbalanced(
  h: Pick<Harness, 'kube' | 'prom'>,
  namespace = 'payments',
  name = 'api',
): void {
  seedDeployment(h, {
    namespace,
    name,
    cpu: {
      [`${name}-hot`]: 1.8,
      [`${name}-a`]: 0.6,
      [`${name}-b`]: 0.62,
      [`${name}-c`]: 0.58,
      [`${name}-cold`]: 0.05,
    },
  });
}

/**
 * Seeds `count` imbalanced Deployments `app-0` … in `namespace` and returns one firing alert
 * for each, to post in one payload.
 */
export function seedImbalancedMany(
  h: Pick<Harness, 'kube' | 'prom'>,
  count: number,
  namespace = 'payments',
): { labels: Record<string, string>; fingerprint: string }[] {
  return Array.from({ length: count }, (_, i) => {
    seedImbalanced(h, namespace, `app-${i}`);
    const labels = { alertname: 'DeploymentCPUImbalance', namespace, deployment: `app-${i}` };
    return { labels, fingerprint: `f${i}` };
  });
}
