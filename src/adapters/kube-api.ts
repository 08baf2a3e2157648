import {
  ApiException,
  AppsV1Api,
  AuthorizationV1Api,
  AutoscalingV2Api,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  ServerConfiguration,
  type KubeConfig,
  type Middleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { upstreamTimeoutMs } from '../deadline.js';
import { UpstreamError } from '../errors.js';
import { KeepAliveAuthentication, nodeHttpLibrary } from './connection-pool.js';

/*
 * The Kubernetes API clients and how their failures are read: the names every Kubernetes
 * adapter shares (the Cluster, the Leases, the caches), in a home they all import.
 */

/** The typed API clients the service uses, all bound to one kubeconfig and one timeout. */
export interface KubeApis {
  core: CoreV1Api;
  apps: AppsV1Api;
  coordination: CoordinationV1Api;
  authorization: AuthorizationV1Api;
  autoscaling: AutoscalingV2Api;
}

/**
 * Aborts every request that takes longer than `timeoutMs`, or than what is left of the webhook
 * request's deadline it is made for, so a slow API server cannot hang us or make us act late.
 */
function timeoutMiddleware(timeoutMs: number): Middleware {
  return {
    pre: async (context: RequestContext) => {
      context.setSignal(AbortSignal.timeout(upstreamTimeoutMs(timeoutMs)));
      return context;
    },
    post: async (context: ResponseContext) => context,
  };
}

/** Builds the API clients from a loaded kubeconfig (in-cluster, KUBECONFIG or a test's). */
export function createKubeApis(kubeConfig: KubeConfig, timeoutMs: number): KubeApis {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    // One keep-alive pool for every call: client-node alone opens a connection per request.
    authMethods: { default: new KeepAliveAuthentication(kubeConfig) },
    httpApi: nodeHttpLibrary,
    promiseMiddleware: [timeoutMiddleware(timeoutMs)],
  });
  return {
    core: new CoreV1Api(configuration),
    apps: new AppsV1Api(configuration),
    coordination: new CoordinationV1Api(configuration),
    authorization: new AuthorizationV1Api(configuration),
    autoscaling: new AutoscalingV2Api(configuration),
  };
}

/** The HTTP status of a failed API call, or undefined when no answer came back. */
export function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/**
 * Classifies a failed Kubernetes call. No answer, a timeout, 429 (API priority and fairness)
 * or a 5xx may pass: retryable. Anything else is an answer that a retry will not change.
 */
export function toUpstreamError(error: unknown, what: string): UpstreamError {
  const status = statusOf(error);
  if (status === undefined) {
    const timedOut =
      error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
    return new UpstreamError(
      'kubernetes',
      timedOut ? 'timeout' : 'network',
      true,
      `${what}: ${timedOut ? 'timed out' : 'API server unreachable'}`,
    );
  }
  if (status >= 500 || status === 429) {
    return new UpstreamError(
      'kubernetes',
      'server',
      true,
      `${what}: API server answered ${status}`,
    );
  }
  const kind = status === 401 || status === 403 ? 'forbidden' : 'client';
  return new UpstreamError(
    'kubernetes',
    kind,
    false,
    `${what}: API server answered ${status} ${reasonOf(error)}`.trim(),
  );
}

function reasonOf(error: unknown): string {
  if (!(error instanceof ApiException)) return '';
  try {
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return typeof body?.message === 'string' ? `(${body.message})` : '';
  } catch {
    return '';
  }
}
