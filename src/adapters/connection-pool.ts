import http from 'node:http';
import https from 'node:https';
import {
  ResponseContext,
  wrapHttpLibrary,
  type KubeConfig,
  type RequestContext,
  type SecurityAuthentication,
} from '@kubernetes/client-node';

/** How many connections to the API server at most; more requests wait for a free one. */
export const MAX_SOCKETS = 32;
/** How long an agent replaced by new credentials keeps serving requests already on it. */
const RETIRE_AFTER_MS = 60_000;

/** The options an agent's TLS connections are made with. */
const TLS_FIELDS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'rejectUnauthorized',
  'servername',
] as const;

function optionsOf(agent: http.Agent): Record<string, unknown> {
  return (agent as http.Agent & { options?: Record<string, unknown> }).options ?? {};
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((value, i) => sameValue(value, b[i]));
  return false;
}

/**
 * Whether two agents make the same connections: same protocol, equal TLS settings. Compared,
 * not hashed: the kubeconfig reads its files into new buffers for every request, and hashing
 * them was a SHA-256 per API call (about 3 % of the 1,000-alert run's CPU).
 */
function interchangeable(a: http.Agent, b: http.Agent): boolean {
  if (a instanceof https.Agent !== b instanceof https.Agent) return false;
  const [x, y] = [optionsOf(a), optionsOf(b)];
  return TLS_FIELDS.every((field) => sameValue(x[field], y[field]));
}

/**
 * The kubeconfig's authentication with one keep-alive connection pool for every call.
 * client-node 1.4 builds a new agent (and so a new TCP and TLS connection) for each request;
 * this lets the kubeconfig do everything it does per request (tokens re-read, exec plugins,
 * client certificates), then swaps in a pooled agent with the same TLS settings. When those
 * settings change (a rotated client certificate), a new pool starts and the old one retires.
 * Proxy agents are left as the kubeconfig made them.
 */
export class KeepAliveAuthentication implements SecurityAuthentication {
  private pool: http.Agent | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly maxSockets = MAX_SOCKETS,
  ) {}

  getName(): string {
    return 'kubeconfig-keep-alive';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.kubeConfig.applySecurityAuthentication(context);
    const made = context.getAgent();
    if (!made || (made.constructor !== http.Agent && made.constructor !== https.Agent)) return;
    context.setAgent(this.agentLike(made));
  }

  /** The pooled agent for these TLS settings. */
  agentLike(made: http.Agent): http.Agent {
    if (!this.pool || !interchangeable(made, this.pool)) {
      const retired = this.pool;
      if (retired) setTimeout(() => retired.destroy(), RETIRE_AFTER_MS).unref();
      const options = {
        ...optionsOf(made),
        keepAlive: true,
        maxSockets: this.maxSockets,
        maxFreeSockets: this.maxSockets,
        // Reuse the most recently used socket, so idle ones time out and the pool shrinks.
        scheduling: 'lifo' as const,
      };
      this.pool = made instanceof https.Agent ? new https.Agent(options) : new http.Agent(options);
    }
    made.destroy();
    return this.pool;
  }

  /** Closes the pooled connections (tests, shutdown). */
  close(): void {
    this.pool?.destroy();
    this.pool = undefined;
  }
}

/**
 * The client's HTTP layer on node:http(s) directly, with the pooled agent. client-node's default
 * (node-fetch 2) misreports a chunked answer as "Premature close" when its keep-alive socket has
 * already been handed to the next request; node:http reads each answer on its own socket.
 */
export const nodeHttpLibrary = wrapHttpLibrary({
  send(request: RequestContext): Promise<ResponseContext> {
    const url = new URL(request.getUrl());
    const transport = url.protocol === 'https:' ? https : http;
    const raw = request.getBody();
    const body = raw === undefined || raw === null || raw === '' ? undefined : String(raw);
    // Node sends a DELETE's body only with a Content-Length (deletes carry preconditions).
    const length = body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) };
    return new Promise((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method: request.getHttpMethod(),
          headers: { ...request.getHeaders(), ...length },
          agent: request.getAgent() as http.Agent | undefined,
          signal: request.getSignal() as AbortSignal | undefined,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const data = Buffer.concat(chunks);
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined)
                headers[name] = Array.isArray(value) ? value.join(', ') : value;
            }
            resolve(
              new ResponseContext(res.statusCode ?? 0, headers, {
                text: async () => data.toString('utf8'),
                binary: async () => data,
              }),
            );
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  },
});
