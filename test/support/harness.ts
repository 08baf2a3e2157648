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

/**
 * The fake rule engine behind each app the harness built. ALERT_PROVENANCE=rules is on in the
 * harness as in production; what keeps the tests that know nothing of it honest is that the
 * fake rule engine has active exactly what a rule would have:
 * - seedDeployment makes the default rule (DeploymentCPUImbalance, no pod_rebalancer_*
 *   annotations) have an alert active for each Deployment it seeds, unless `ruleFires: false`;
 * - postWebhook plays Alertmanager forwarding what a rule fired: each firing alert it posts
 *   becomes active in the rule engine first, labels and annotations as posted, unless
 *   `{ fromRule: false }` (a forgery: the rule engine never heard of it).
 * Tests of provenance itself clear `h.prom.ruleAlerts` or post with `fromRule: false`.
 */
const ruleEngines = new WeakMap<object, FakePrometheus>();

/** POSTs `body` to the webhook with the token Alertmanager sends, as it would. */
export function postWebhook(
  app: Harness['service']['app'],
  body: unknown,
  options: { fromRule?: boolean } = {},
) {
  const engine = ruleEngines.get(app);
  if (engine && options.fromRule !== false) fireRulesFor(engine, body);
  return request(app)
    .post('/webhook')
    .set('Authorization', `Bearer ${TOKEN}`)
    .send(body as object);
}

/** Makes the rule engine have each firing alert of a payload active, as the rule that fired it. */
export function fireRulesFor(engine: FakePrometheus, body: unknown): void {
  const alerts = (body as { alerts?: unknown } | undefined)?.alerts;
  if (!Array.isArray(alerts)) return;
  for (const alert of alerts as { status?: unknown; labels?: unknown; annotations?: unknown }[]) {
    if (alert?.status !== 'firing' || !alert.labels || typeof alert.labels !== 'object') continue;
    engine.fireRule({
      labels: alert.labels as Record<string, string>,
      annotations: (alert.annotations ?? {}) as Record<string, string>,
    });
  }
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
    /** How often each replica's rotation driver looks at rotations (its timer starts on start()). */
    rotationCheckMs?: number;
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
  const services: Service[] = [];
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
    const service = createService(
      config,
      {
        ...adapters,
        // Without watch caches every read goes to the fake API server, as the tests arrange it.
        caches: options.watchCaches ? caches : undefined,
        logger: createLogger(config.logLevel, logs.transport()),
        ...(clock ? { clock } : {}),
      },
      { rotationCheckMs: options.rotationCheckMs },
    );
    ruleEngines.set(service.app, prom);
    services.push(service);
    return service;
  };
  return {
    kube,
    prom,
    logs,
    service: build('replica-a'),
    replica: build,
    async stop() {
      await Promise.all(services.map((service) => service.rotations.stop()));
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
    {
      phase?: string;
      ready?: boolean;
      startedAgoMs?: number;
      terminating?: boolean;
      /** The pod's own spec.priority, as admission sets it (the template may say nothing). */
      priority?: number;
    }
  >;
  rolloutInProgress?: boolean;
  /** The pod template's priorityClassName (and the priority admission resolves it to). */
  priorityClassName?: string;
  priority?: number;
  /**
   * Whether the default rule has an alert active for this Deployment in the fake rule engine
   * (default true; see `ruleEngines` above).
   */
  ruleFires?: boolean;
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
      availableReplicas: replicas,
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
      ...(o.priority !== undefined && { spec: { containers: [], priority: o.priority } }),
      status: {
        phase: o.phase ?? 'Running',
        startTime: new Date(Date.now() - (o.startedAgoMs ?? HOUR)).toISOString(),
        conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
      },
    });
    if (cpu !== undefined) h.prom.cpu.set(`${namespace}/${pod}`, cpu);
  }
  if (options.ruleFires !== false && 'fireRule' in h.prom) {
    h.prom.fireRule({
      labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment: name },
      annotations: {},
    });
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

export interface AutoscalerSeed {
  namespace: string;
  name: string;
  /** The Deployment its scaleTargetRef names. */
  target: string;
  desiredReplicas: number;
  currentReplicas: number;
  /** How long ago it last scaled; never when absent. */
  lastScaledAgoMs?: number;
}

/** Creates a HorizontalPodAutoscaler (autoscaling/v2) in the fake API server, with its status. */
export function seedAutoscaler(h: Pick<Harness, 'kube'>, seed: AutoscalerSeed): void {
  const { namespace, name, target, desiredReplicas, currentReplicas } = seed;
  const lastScaled = seed.lastScaledAgoMs;
  h.kube.addAutoscaler({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { namespace, name, uid: `uid-hpa-${name}` },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target },
      minReplicas: 2,
      maxReplicas: 10,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
        },
      ],
    },
    status: {
      desiredReplicas,
      // The API server omits a count of 0 (omitempty), as it does here.
      ...(currentReplicas ? { currentReplicas } : {}),
      ...(lastScaled === undefined
        ? {}
        : {
            lastScaleTime: new Date(Date.now() - lastScaled).toISOString().replace(/\.\d+Z$/, 'Z'),
          }),
    },
  });
}
