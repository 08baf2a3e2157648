import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaseActionBudgetStore } from './adapters/budget-lease.js';
import { LeaseCooldownStore } from './adapters/cooldown-lease.js';
import { loadKubeConfig, type KubeConfigChoice } from './adapters/kubeconfig.js';
import { AutoscalerCache } from './adapters/autoscaler-cache.js';
import { DeploymentCache, LeaseCache } from './adapters/caches.js';
import type { WatchTiming } from './adapters/watch-cache.js';
import type { Clock } from './ports.js';
import { createKubeApis, KubernetesCluster } from './adapters/kubernetes.js';
import { createLogger, type Logger } from './adapters/logger.js';
import { prometheusConnection, PrometheusMetricsSource } from './adapters/prometheus.js';
import { PrometheusRuleSource } from './adapters/rules.js';
import { ConfigError, loadConfig, readSecretFile, type Config } from './config.js';
import {
  logRefusedHandshakes,
  reloadOnChange,
  tlsServerOptions,
  type TlsFiles,
} from './http/tls.js';
import { fileTokens, parseTokenFile, staticTokens, type TokenSource } from './http/tokens.js';
import { createService, type Adapters, type Service } from './service.js';
import { sweepPeriodically } from './stages/sweep.js';

/** Per-call timeout towards the Kubernetes API: well inside Alertmanager's webhook timeout. */
const KUBERNETES_TIMEOUT_MS = 5000;
/**
 * How long after SIGTERM the process exits anyway, the delay included: inside the pod's
 * terminationGracePeriodSeconds (30 s), so that it exits on its own before the kubelet's SIGKILL.
 */
const STOP_DEADLINE_MS = 28_000;
/** How often Leases of deleted or recreated Deployments are swept from STATE_NAMESPACE. */
const SWEEP_INTERVAL_MS = 10 * 60_000;

function tokenSource(config: Readonly<Config>): TokenSource {
  if (!config.webhookTokenFile) return staticTokens(config.webhookToken!);
  let text: string;
  try {
    text = readFileSync(config.webhookTokenFile, 'utf8');
  } catch (error) {
    throw new ConfigError([
      `WEBHOOK_TOKEN_FILE: cannot read the file (${(error as NodeJS.ErrnoException).code})`,
    ]);
  }
  if (parseTokenFile(text).length === 0)
    throw new ConfigError(['WEBHOOK_TOKEN_FILE: the file holds no token']);
  return fileTokens(config.webhookTokenFile);
}

/**
 * The Prometheus credential and CA files must be readable at start (a typo is a configuration
 * problem naming the variable); afterwards they are re-read on change, never cached for good.
 */
function checkPrometheusFiles(config: Readonly<Config>): void {
  readSecretFile(config.prometheusBearerTokenFile, 'PROMETHEUS_BEARER_TOKEN_FILE');
  readSecretFile(config.prometheusBasicAuthPasswordFile, 'PROMETHEUS_BASIC_AUTH_PASSWORD_FILE');
  readSecretFile(config.prometheusCaFile, 'PROMETHEUS_CA_FILE');
}

/** What tests may change of the real adapters. */
export interface AdapterOptions {
  watchTiming?: Partial<WatchTiming>;
  clock?: Clock;
}

/** Builds the real adapters: Prometheus over HTTP and the Kubernetes API from the kubeconfig. */
export function realAdapters(
  config: Readonly<Config>,
  env: NodeJS.ProcessEnv,
  kubeConfig: KubeConfig = loadKubeConfig({}, env),
  /** Tests shorten the watch caches' timing and set this replica's clock. */
  { watchTiming, clock = { now: () => new Date() } }: AdapterOptions = {},
): Adapters & Required<Pick<Adapters, 'rules'>> {
  checkPrometheusFiles(config);
  const apis = createKubeApis(kubeConfig, KUBERNETES_TIMEOUT_MS);
  const identity = env.POD_NAME ?? hostname();
  const logger = createLogger(config.logLevel);
  const direct = new LeaseCooldownStore(apis, config.stateNamespace);
  const leases = new LeaseCache(kubeConfig, apis, {
    namespace: config.stateNamespace,
    logger,
    timing: watchTiming,
    clock,
    fallback: { get: (name) => direct.readLease(name) },
  });
  // NAMESPACES narrows the Deployment watch to the namespaces in scope; unset, all of them.
  const namespaces = config.namespaces ? [...config.namespaces] : undefined;
  const deployments = new DeploymentCache(kubeConfig, apis, namespaces, {
    logger,
    timing: watchTiming,
  });
  const autoscalers = new AutoscalerCache(kubeConfig, apis, namespaces, {
    logger,
    timing: watchTiming,
  });
  const connection = prometheusConnection(config);
  const prometheus = new PrometheusMetricsSource(connection, config.cpuSeries);
  return {
    cluster: new KubernetesCluster(apis, identity, deployments),
    cooldown: new LeaseCooldownStore(apis, config.stateNamespace, leases),
    actionBudget: new LeaseActionBudgetStore(apis, config.stateNamespace),
    autoscalers,
    metrics: prometheus,
    guards: prometheus,
    // The rule engine with Prometheus's credentials, CA and headers, at RULES_URL.
    rules: new PrometheusRuleSource({ ...connection, url: config.rulesUrl }),
    clock,
    logger,
    tokens: tokenSource(config),
    identity,
    caches: {
      start: () => {
        deployments.start();
        leases.start();
        autoscalers.start();
      },
      isSynced: () => deployments.isSynced() && leases.isSynced() && autoscalers.isSynced(),
      modes: () => ({
        deployments: deployments.mode(),
        leases: leases.mode(),
        autoscalers: autoscalers.mode(),
      }),
      stop: async () => {
        await Promise.all([deployments.stop(), leases.stop(), autoscalers.stop()]);
      },
    },
  };
}

/** The Cluster and CooldownStore reading the API server directly, without caches. */
function freshReaders(
  config: Readonly<Config>,
  kubeConfig: KubeConfig,
): { cluster: KubernetesCluster; cooldown: LeaseCooldownStore } {
  const apis = createKubeApis(kubeConfig, KUBERNETES_TIMEOUT_MS);
  return {
    cluster: new KubernetesCluster(apis, 'sweep'),
    cooldown: new LeaseCooldownStore(apis, config.stateNamespace),
  };
}

/** What a slow or hostile client can hold: headers, whole requests, idle sockets. */
export interface ServerLimits {
  /** Time to send the request headers (slow-loris). */
  headersTimeoutMs: number;
  /** Time to send the whole request, body included. */
  requestTimeoutMs: number;
  /** Idle time of a keep-alive connection: above the load balancer's, so it closes first. */
  keepAliveTimeoutMs: number;
  /** How often the two timeouts above are checked; Node's default (30 s) would stretch them. */
  checkIntervalMs: number;
  /** Largest request head; bigger ones get 431. */
  maxHeaderSize: number;
}

export const SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  checkIntervalMs: 1000,
  maxHeaderSize: 16 * 1024,
});

export interface WebServerOptions {
  logger: Logger;
  /** Serve HTTPS with these files, re-read when they change; plain HTTP without. */
  tls?: TlsFiles;
  limits?: Partial<ServerLimits>;
  /** How often the TLS files are checked for a change. */
  tlsRecheckMs?: number;
}

/** The TLS files named by the configuration, if any. */
export function tlsFiles(config: Readonly<Config>): TlsFiles | undefined {
  if (!config.tlsCertFile || !config.tlsKeyFile) return undefined;
  return {
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    clientCaFile: config.tlsClientCaFile,
  };
}

/**
 * The server `serve` listens with: HTTP, or HTTPS (optionally requiring a client certificate)
 * that follows certificate rotation, bounded against slow and oversized requests.
 */
export function createWebServer(app: RequestListener, options: WebServerOptions): Server {
  const limits = { ...SERVER_LIMITS, ...options.limits };
  const base = {
    maxHeaderSize: limits.maxHeaderSize,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
  let server: Server;
  if (options.tls) {
    const https = createHttpsServer({ ...base, ...tlsServerOptions(options.tls) }, app);
    reloadOnChange(https, options.tls, {
      logger: options.logger,
      intervalMs: options.tlsRecheckMs,
    });
    logRefusedHandshakes(https, options.logger);
    server = https;
  } else {
    server = createServer(base, app);
  }
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  return server;
}

/** Stops accepting connections, lets in-flight requests finish, then exits 0. */
function drain(server: Server): void {
  server.close(() => process.exit(0));
  // A keep-alive connection becomes idle only when its in-flight request ends: sweep until then.
  setInterval(() => server.closeIdleConnections(), 100).unref();
  server.closeIdleConnections();
}

/**
 * `pod-rebalancer serve`: loads the configuration (exiting with one line per problem),
 * listens, and on SIGTERM turns not-ready, keeps serving SHUTDOWN_DELAY, then drains and exits.
 */
export async function serve(
  env: NodeJS.ProcessEnv,
  kubeConfigChoice: KubeConfigChoice = {},
): Promise<Server> {
  let config: Readonly<Config>;
  let adapters: Adapters;
  let service: Service;
  let server: Server;
  let kubeConfig: KubeConfig;
  try {
    // Every configuration problem at once: the variables, then where the cluster is.
    const problems: string[] = [];
    const collect = <T>(load: () => T): T | undefined => {
      try {
        return load();
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        problems.push(...error.problems);
        return undefined;
      }
    };
    const loaded = collect(() => loadConfig(env));
    const loadedKubeConfig = collect(() => loadKubeConfig(kubeConfigChoice, env));
    if (!loaded || !loadedKubeConfig) throw new ConfigError(problems);
    config = loaded;
    kubeConfig = loadedKubeConfig;
    adapters = realAdapters(config, env, kubeConfig);
    service = createService(config, adapters);
    // Unreadable or mismatched TLS files stop the start like any other invalid setting.
    server = createWebServer(service.app, { logger: adapters.logger, tls: tlsFiles(config) });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`pod-rebalancer: ${problem}\n`);
    process.exit(2);
  }
  await new Promise<void>((resolve) => server.listen(config.port, resolve));
  adapters.logger.info('listening', {
    port: config.port,
    dryRun: config.dryRun,
    action: config.action,
  });
  adapters.caches?.start();
  service.rotations.start();
  const fresh = freshReaders(config, kubeConfig);
  sweepPeriodically(
    {
      // Fresh reads: a lagging cache must never make a live Deployment's Lease look stale.
      cluster: fresh.cluster,
      cooldown: fresh.cooldown,
      telemetry: service.telemetry,
      logger: adapters.logger,
      dryRun: config.dryRun,
    },
    SWEEP_INTERVAL_MS,
  );

  // SIGTERM: readiness fails at once, but the listener stays open for SHUTDOWN_DELAY, because
  // endpoints are removed from Services (and kube-proxy, ingress, Alertmanager's connections)
  // only after the kubelet sees the pod terminating: closing at once refuses those requests.
  // Then drain: stop accepting, finish in-flight requests, exit. SIGINT (a person at a terminal)
  // drains at once.
  const shutdown = (signal: string, delayMs: number) => {
    adapters.logger.info('shutting down', { signal, delayMs });
    service.stopReadiness();
    void service.rotations.stop();
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    setTimeout(() => drain(server), delayMs).unref();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM', config.shutdownDelayMs));
  process.once('SIGINT', () => shutdown('SIGINT', 0));
  return server;
}
