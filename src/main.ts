import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { LeaseCooldownStore } from './adapters/cooldown-lease.js';
import { createKubeApis, KubernetesCluster } from './adapters/kubernetes.js';
import { createLogger } from './adapters/logger.js';
import { PrometheusMetricsSource } from './adapters/prometheus.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { fileTokens, parseTokenFile, staticTokens, type TokenSource } from './http/tokens.js';
import { createService, type Adapters } from './service.js';

/** Per-call timeout towards the Kubernetes API: well inside Alertmanager's webhook timeout. */
const KUBERNETES_TIMEOUT_MS = 5000;
/** How long SIGTERM waits for in-flight requests before exiting anyway. */
const DRAIN_MS = 25_000;

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

/** The first line of a secret file, or undefined without a file; never echoes the content. */
function readSecretFile(path: string | undefined, variable: string): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/)[0]!.trim();
  } catch (error) {
    throw new ConfigError([
      `${variable}: cannot read the file (${(error as NodeJS.ErrnoException).code})`,
    ]);
  }
}

/** KUBECONFIG when set, else the in-cluster service account. */
function defaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

/** Builds the real adapters: Prometheus over HTTP and the Kubernetes API from the kubeconfig. */
export function realAdapters(
  config: Readonly<Config>,
  env: NodeJS.ProcessEnv,
  kubeConfig: KubeConfig = defaultKubeConfig(),
): Adapters {
  const apis = createKubeApis(kubeConfig, KUBERNETES_TIMEOUT_MS);
  const identity = env.POD_NAME ?? hostname();
  return {
    cluster: new KubernetesCluster(apis, identity),
    cooldown: new LeaseCooldownStore(apis),
    metrics: new PrometheusMetricsSource({
      url: config.prometheusUrl,
      timeoutMs: config.prometheusTimeoutMs,
      bearerToken: readSecretFile(config.prometheusBearerTokenFile, 'PROMETHEUS_BEARER_TOKEN_FILE'),
    }),
    clock: { now: () => new Date() },
    logger: createLogger(config.logLevel),
    tokens: tokenSource(config),
    identity,
  };
}

/** Bounds what a slow or hostile client can hold: headers, whole requests, idle sockets. */
function hardenServer(server: Server): Server {
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  return server;
}

/**
 * `pod-rebalancer serve`: loads the configuration (exiting with one line per problem),
 * listens, and on SIGTERM stops accepting, finishes in-flight requests, then exits.
 */
export async function serve(env: NodeJS.ProcessEnv): Promise<Server> {
  let config: Readonly<Config>;
  let adapters: Adapters;
  try {
    config = loadConfig(env);
    adapters = realAdapters(config, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`pod-rebalancer: ${problem}\n`);
    process.exit(2);
  }
  const service = createService(config, adapters);
  const server = hardenServer(createServer({ maxHeaderSize: 16 * 1024 }, service.app));
  await new Promise<void>((resolve) => server.listen(config.port, resolve));
  adapters.logger.info('listening', {
    port: config.port,
    dryRun: config.dryRun,
    action: config.action,
  });

  const shutdown = (signal: string) => {
    adapters.logger.info('shutting down', { signal });
    service.stopReadiness();
    server.close(() => process.exit(0));
    // A keep-alive connection becomes idle only when its in-flight request ends: sweep until then.
    setInterval(() => server.closeIdleConnections(), 100).unref();
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), DRAIN_MS).unref();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return server;
}
