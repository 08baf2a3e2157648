import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.js';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * A fake Kubernetes API server over HTTP, driven through the real @kubernetes/client-node.
 * It answers the way the real one does where pod-rebalancer depends on it: 404 Status
 * objects, 409 AlreadyExists on create, 409 Conflict on a stale resourceVersion, 409 on a
 * failed uid precondition, 429 from an eviction a PodDisruptionBudget refuses, and 400 for
 * Lease and Event times that are not MicroTime. Deployments, Leases and HorizontalPodAutoscalers
 * (autoscaling/v2) are listed and watched like the real collections.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- API objects are free-form JSON here

export interface Removal {
  namespace: string;
  name: string;
  via: 'eviction' | 'delete';
}

/** A pod the fake started in place of a removed one, as a ReplicaSet does. */
export interface Replacement {
  namespace: string;
  name: string;
  replaces: string;
  /** When it turned Ready; undefined while it is not. */
  readyAt?: Date;
}

/** An injected fault: the next `times` requests matching method and path get `status`. */
export interface Fault {
  method: string;
  path: RegExp;
  status?: number;
  delayMs?: number;
  /** Answer with this raw body (e.g. garbage) instead of a Status object. */
  rawBody?: string;
  times?: number;
  /** Drop the connection without answering. */
  destroy?: boolean;
  /**
   * Only requests about an object whose name matches: the last path segment, or for a create the
   * body's metadata.name (two Leases in one namespace are created at the same path).
   */
  name?: RegExp;
}

/** A collection the fake can list and watch. */
type Kind = 'deployments' | 'leases' | 'horizontalpodautoscalers';

/** Each collection's apiVersion and kinds, as its lists, watch events and bookmarks carry them. */
const TYPES: Record<Kind, { apiVersion: string; kind: string }> = {
  deployments: { apiVersion: 'apps/v1', kind: 'Deployment' },
  leases: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' },
  horizontalpodautoscalers: { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' },
};

interface Change {
  version: number;
  kind: Kind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Json;
}

interface Watcher {
  kind: Kind;
  namespace: string | undefined;
  selector: string;
  bookmarks: boolean;
  res: ServerResponse;
  /** Open but sends nothing, ever: a half-open connection to a control-plane node that died. */
  silent?: boolean;
}

const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

function status(code: number, reason: string, message: string, details?: Json): Json {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** Matches a pod's labels against a labelSelector string (equality, in, notin, exists, !exists). */
export function matchesSelector(labels: Record<string, string>, selector: string): boolean {
  const requirements = selector.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  return requirements.every((raw) => {
    const req = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(req))) {
      const values = m[3]!.split(',').map((v) => v.trim());
      const has = m[1]! in labels && values.includes(labels[m[1]!]!);
      return m[2] === 'in' ? has : !has;
    }
    if ((m = /^(\S+?)(==|=|!=)(.*)$/.exec(req))) {
      return m[2] === '!=' ? labels[m[1]!] !== m[3] : labels[m[1]!] === m[3];
    }
    if (req.startsWith('!')) return !(req.slice(1) in labels);
    return req in labels;
  });
}

export class FakeKubeApiServer extends LoopbackServer {
  readonly deployments = new Map<string, Json>();
  readonly pods = new Map<string, Json>();
  readonly leases = new Map<string, Json>();
  /** HorizontalPodAutoscalers (autoscaling/v2), by `namespace/name`. */
  readonly autoscalers = new Map<string, Json>();
  readonly events: Json[] = [];
  readonly removals: Removal[] = [];
  /** Every request, in order; `at` is when it arrived (performance.now(), in ms). */
  readonly requests: {
    method: string;
    path: string;
    query: string;
    body: Json | undefined;
    at: number;
  }[] = [];
  /** The next N list calls that carry a continue token answer 410 Expired, as after compaction. */
  expireContinues = 0;
  /** `namespace/pod` names whose eviction a PodDisruptionBudget refuses (429). */
  readonly pdbBlocked = new Set<string>();
  /** `namespace/pod` names whose eviction API Priority and Fairness rejects (429, no cause). */
  readonly evictionThrottled = new Set<string>();
  readonly faults: Fault[] = [];
  /** Called after each answer, to change the world between two calls (e.g. a pod replaced). */
  afterRequest: (method: string, path: string) => void = () => undefined;
  /**
   * Every watch request is answered with this status: 403 is RBAC that grants list but not
   * watch; 500 or 429 a watch that keeps failing. Undefined: watches are served.
   */
  refuseWatches: number | undefined;
  /** List calls (of Deployments or Leases) and the `limit` each asked for; 0 when unpaged. */
  readonly collectionLists: { path: string; limit: number; continued: boolean }[] = [];
  /** Answers SelfSubjectAccessReviews: allowed unless this returns false. */
  allow: (attributes: Json) => boolean = () => true;
  /**
   * Off (undefined) by default: a removed pod is simply gone. Set, a removed pod of a Deployment
   * is replaced at once by a Running pod that is not Ready, and the Deployment has one replica
   * less available until it turns Ready: after `readyAfterMs`, or when readyReplacements() is
   * called when that is undefined.
   */
  replacePods: { readyAfterMs?: number } | undefined = undefined;
  readonly replacements: Replacement[] = [];
  /** When each removed pod (`namespace/name`) was removed. */
  readonly removedAt = new Map<string, Date>();

  private version = 1000;
  /** Every change, for watches that resume from a resourceVersion (until compacted). */
  private readonly history: Change[] = [];
  /** Watches from a resourceVersion below this get 410 Gone, as after etcd compaction. */
  private compactedBelow = 0;
  private readonly watchers = new Set<Watcher>();
  /** While true, watch events are held back (a watch that lags behind); release with flush. */
  private holding = false;
  /** While true, new watches are silent too (see silenceWatches). */
  private silencing = false;
  private held: { watcher: Watcher; line: string }[] = [];

  /** A kubeconfig for this server, as a user's would be (plain http needs skipTLSVerify). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-kube-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Writes the kubeconfig as YAML-compatible JSON to `path` (for a KUBECONFIG variable). */
  kubeConfigText(): string {
    return this.kubeConfig().exportConfig();
  }

  addDeployment(deployment: Json): void {
    const { namespace, name } = deployment.metadata;
    const key = `${namespace}/${name}`;
    const type = this.deployments.has(key) ? 'MODIFIED' : 'ADDED';
    deployment.metadata.resourceVersion = this.nextVersion();
    this.deployments.set(key, deployment);
    this.emit('deployments', type, deployment);
  }

  /** Deletes a Deployment (watchers see DELETED). */
  deleteDeployment(namespace: string, name: string): void {
    const deployment = this.deployments.get(`${namespace}/${name}`);
    if (!deployment) return;
    this.deployments.delete(`${namespace}/${name}`);
    deployment.metadata.resourceVersion = this.nextVersion();
    this.emit('deployments', 'DELETED', deployment);
  }

  /** Creates or replaces a HorizontalPodAutoscaler (watchers see ADDED or MODIFIED). */
  addAutoscaler(hpa: Json): void {
    const { namespace, name } = hpa.metadata;
    const key = `${namespace}/${name}`;
    const type = this.autoscalers.has(key) ? 'MODIFIED' : 'ADDED';
    hpa.metadata.resourceVersion = this.nextVersion();
    this.autoscalers.set(key, hpa);
    this.emit('horizontalpodautoscalers', type, hpa);
  }

  /** Deletes a HorizontalPodAutoscaler (watchers see DELETED). */
  deleteAutoscaler(namespace: string, name: string): void {
    const hpa = this.autoscalers.get(`${namespace}/${name}`);
    if (!hpa) return;
    this.autoscalers.delete(`${namespace}/${name}`);
    hpa.metadata.resourceVersion = this.nextVersion();
    this.emit('horizontalpodautoscalers', 'DELETED', hpa);
  }

  /** Holds watch events back until releaseWatches(): a watch cache that lags behind. */
  holdWatches(): void {
    this.holding = true;
  }

  /**
   * Every open watch goes silent (the stream stays open, nothing is sent on it again), and so
   * does every watch opened until hearWatches(): a control-plane node gone without a RST.
   */
  silenceWatches(): void {
    this.silencing = true;
    for (const watcher of this.watchers) watcher.silent = true;
  }

  /** Watches opened from now on are heard again (the silent ones stay silent until closed). */
  hearWatches(): void {
    this.silencing = false;
  }

  releaseWatches(): void {
    this.holding = false;
    for (const { watcher, line } of this.held.splice(0)) watcher.res.write(line);
  }

  /** Sends a BOOKMARK with the current resourceVersion to watches that asked for bookmarks. */
  bookmark(): void {
    for (const watcher of this.watchers) {
      if (!watcher.bookmarks) continue;
      const object = {
        ...TYPES[watcher.kind],
        metadata: { resourceVersion: String(this.version) },
      };
      this.write(watcher, { type: 'BOOKMARK', object });
    }
  }

  /** Ends every open watch, as an API server's watch timeout does: clients watch again. */
  endWatches(): void {
    for (const watcher of this.watchers) watcher.res.end();
    this.watchers.clear();
  }

  /**
   * Compacts the history (resuming from any earlier resourceVersion now gets 410 Gone) and ends
   * every open watch, as an API server restart or a watch timeout does: clients must relist.
   */
  expireWatches(): void {
    this.compactedBelow = this.version + 1;
    this.history.length = 0;
    for (const watcher of this.watchers) watcher.res.end();
    this.watchers.clear();
  }

  /** Open watch connections. */
  get openWatches(): number {
    return this.watchers.size;
  }

  private emit(kind: Kind, type: Change['type'], object: Json): void {
    const change = { version: this.version, kind, type, object: structuredClone(object) };
    this.history.push(change);
    for (const watcher of this.watchers) {
      if (this.matches(watcher, change.object)) {
        this.write(watcher, { type, object: change.object });
      }
    }
  }

  private matches(watcher: Watcher, object: Json): boolean {
    return (
      (watcher.namespace === undefined || object.metadata.namespace === watcher.namespace) &&
      matchesSelector(object.metadata.labels ?? {}, watcher.selector)
    );
  }

  private write(watcher: Watcher, event: Json): void {
    if (watcher.silent) return;
    const line = `${JSON.stringify(event)}\n`;
    if (this.holding) this.held.push({ watcher, line });
    else watcher.res.write(line);
  }

  /** `?watch=true` on a collection: a stream of events from the given resourceVersion on. */
  private watch(
    kind: Kind,
    namespace: string | undefined,
    params: URLSearchParams,
    res: ServerResponse,
  ): void {
    const refusal = this.refuseWatches;
    if (refusal !== undefined) {
      const what = kind === 'leases' ? 'leases.coordination.k8s.io' : 'deployments.apps';
      const message =
        refusal === 403
          ? `${what} is forbidden: User "system:serviceaccount:pod-rebalancer:pod-rebalancer" cannot watch resource "${kind}"`
          : 'injected watch failure';
      return send(res, refusal, status(refusal, REASONS[refusal] ?? 'Unknown', message));
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const from = Number(params.get('resourceVersion') || this.version);
    const watcher: Watcher = {
      kind,
      namespace,
      selector: params.get('labelSelector') ?? '',
      bookmarks: params.get('allowWatchBookmarks') === 'true',
      res,
      silent: this.silencing,
    };
    if (from < this.compactedBelow) {
      const gone = status(410, 'Expired', `too old resource version: ${from} (${this.version})`);
      res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
      return;
    }
    this.watchers.add(watcher);
    res.on('close', () => this.watchers.delete(watcher));
    for (const change of this.history) {
      if (change.version > from && change.kind === kind && this.matches(watcher, change.object)) {
        this.write(watcher, { type: change.type, object: change.object });
      }
    }
  }

  /** Lists a collection; a resourceVersion older than the compacted history gets 410. */
  private listOf(
    kind: Kind,
    namespace: string | undefined,
    params: URLSearchParams,
  ): [number, Json] {
    const asked = params.get('resourceVersion');
    if (asked && Number(asked) < this.compactedBelow) {
      return [410, status(410, 'Expired', `too old resource version: ${asked} (${this.version})`)];
    }
    const store = this.storeOf(kind);
    const selector = params.get('labelSelector') ?? '';
    const items = [...store.values()].filter(
      (o) =>
        (namespace === undefined || o.metadata.namespace === namespace) &&
        matchesSelector(o.metadata.labels ?? {}, selector),
    );
    const { apiVersion, kind: itemKind } = TYPES[kind];
    this.collectionLists.push({
      path: kind,
      limit: Number(params.get('limit') ?? 0),
      continued: params.has('continue'),
    });
    const [code, page] = this.page(items, params);
    return code === 200 ? [code, { kind: `${itemKind}List`, apiVersion, ...page }] : [code, page];
  }

  /**
   * One page of a list, as the API server pages: `limit` items from the `continue` token on,
   * with the next token while more remain; a token gets 410 Expired while expireContinues lasts.
   */
  private page(items: Json[], params: URLSearchParams): [number, Json] {
    const token = params.get('continue');
    if (token && this.expireContinues > 0) {
      this.expireContinues--;
      return [
        410,
        status(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        ),
      ];
    }
    const offset = token ? Number(Buffer.from(token, 'base64').toString('utf8')) : 0;
    const limit = Number(params.get('limit') ?? 0) || items.length;
    const next = offset + limit < items.length ? offset + limit : undefined;
    const metadata: Json = { resourceVersion: String(this.version) };
    if (next !== undefined) {
      metadata.continue = Buffer.from(String(next)).toString('base64');
      metadata.remainingItemCount = items.length - next;
    }
    return [200, { metadata, items: items.slice(offset, offset + limit) }];
  }

  private storeOf(kind: Kind): Map<string, Json> {
    const stores = {
      deployments: this.deployments,
      leases: this.leases,
      horizontalpodautoscalers: this.autoscalers,
    };
    return stores[kind];
  }

  /** The collection a GET addresses, if it is one the fake watches. */
  private collectionOf(path: string): { kind: Kind; namespace: string | undefined } | undefined {
    let m: RegExpExecArray | null;
    if (path === '/apis/apps/v1/deployments') return { kind: 'deployments', namespace: undefined };
    if ((m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments$/.exec(path))) {
      return { kind: 'deployments', namespace: m[1]! };
    }
    if ((m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases$/.exec(path))) {
      return { kind: 'leases', namespace: m[1]! };
    }
    if (path === '/apis/autoscaling/v2/horizontalpodautoscalers') {
      return { kind: 'horizontalpodautoscalers', namespace: undefined };
    }
    if (
      (m = /^\/apis\/autoscaling\/v2\/namespaces\/([^/]+)\/horizontalpodautoscalers$/.exec(path))
    ) {
      return { kind: 'horizontalpodautoscalers', namespace: m[1]! };
    }
    return undefined;
  }

  addPod(pod: Json): void {
    const { namespace, name } = pod.metadata;
    pod.metadata.resourceVersion ??= this.nextVersion();
    this.pods.set(`${namespace}/${name}`, pod);
  }

  fail(fault: Fault): void {
    this.faults.push({ times: 1, ...fault });
  }

  private nextVersion(): string {
    return String(++this.version);
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    this.requests.push({
      method,
      path: url.pathname,
      query: url.search,
      body,
      at: performance.now(),
    });
    const fault = this.takeFault(method, url.pathname, body);
    if (fault?.delayMs) await this.sleep(fault.delayMs);
    if (fault?.destroy) return void req.socket.destroy();
    if (fault?.rawBody !== undefined) return send(res, fault.status ?? 200, fault.rawBody);
    if (fault?.status)
      return send(
        res,
        fault.status,
        status(fault.status, REASONS[fault.status] ?? 'Unknown', 'injected fault'),
      );
    const collection = method === 'GET' ? this.collectionOf(url.pathname) : undefined;
    if (collection && url.searchParams.get('watch') === 'true') {
      return this.watch(collection.kind, collection.namespace, url.searchParams, res);
    }
    if (collection) {
      const [code, answer] = this.listOf(collection.kind, collection.namespace, url.searchParams);
      send(res, code, answer);
      this.afterRequest(method, url.pathname);
      return;
    }
    const [code, answer] = this.route(method, url, body);
    send(res, code, answer);
    this.afterRequest(method, url.pathname);
  }

  private takeFault(method: string, path: string, body: Json | undefined): Fault | undefined {
    const created = (body as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
    const name = method === 'POST' && typeof created === 'string' ? created : path.split('/').pop();
    const index = this.faults.findIndex(
      (f) => f.method === method && f.path.test(path) && (!f.name || f.name.test(name ?? '')),
    );
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    if (--fault.times! <= 0) this.faults.splice(index, 1);
    return fault;
  }

  private route(method: string, url: URL, body: Json | undefined): [number, Json] {
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if (
      (m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)$/.exec(p)) &&
      method === 'GET'
    ) {
      return this.get(this.deployments, m[1]!, m[2]!, 'deployments');
    }
    if (
      (m = /^\/apis\/autoscaling\/v2\/namespaces\/([^/]+)\/horizontalpodautoscalers\/([^/]+)$/.exec(
        p,
      )) &&
      method === 'GET'
    ) {
      const kind = 'horizontalpodautoscalers.autoscaling';
      return this.get(this.autoscalers, m[1]!, m[2]!, kind);
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p)) && method === 'GET') {
      return this.listPods(m[1]!, url.searchParams);
    }
    if (
      (m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/eviction$/.exec(p)) &&
      method === 'POST'
    ) {
      return this.evict(m[1]!, m[2]!, body);
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p)) && method === 'DELETE') {
      return this.deletePod(m[1]!, m[2]!, body?.preconditions?.uid, 'delete');
    }
    if (
      (m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(p))
    ) {
      return this.lease(method, m[1]!, m[2], body, url.searchParams.get('labelSelector') ?? '');
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(p)) && method === 'POST') {
      return this.createEvent(m[1]!, body ?? {});
    }
    if (p === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' && method === 'POST') {
      const attributes = body?.spec?.resourceAttributes ?? {};
      return [201, { ...body, status: { allowed: this.allow(attributes) } }];
    }
    return [
      404,
      status(404, 'NotFound', `the server could not find the requested resource (${method} ${p})`),
    ];
  }

  private get(
    store: Map<string, Json>,
    namespace: string,
    name: string,
    kind: string,
  ): [number, Json] {
    const object = store.get(`${namespace}/${name}`);
    if (!object) return [404, status(404, 'NotFound', `${kind} "${name}" not found`)];
    return [200, object];
  }

  /** Lists pods like the real API server: labelSelector, and pages with limit/continue. */
  private listPods(namespace: string, params: URLSearchParams): [number, Json] {
    const selector = params.get('labelSelector') ?? '';
    const items = [...this.pods.values()].filter(
      (pod) =>
        pod.metadata.namespace === namespace &&
        matchesSelector(pod.metadata.labels ?? {}, selector),
    );
    const [code, page] = this.page(items, params);
    return code === 200 ? [code, { kind: 'PodList', apiVersion: 'v1', ...page }] : [code, page];
  }

  private evict(namespace: string, name: string, body: Json | undefined): [number, Json] {
    if (body?.kind !== 'Eviction') return [400, status(400, 'BadRequest', 'expected an Eviction')];
    if (!this.pods.has(`${namespace}/${name}`))
      return [404, status(404, 'NotFound', `pods "${name}" not found`)];
    // Both 429s as the real API server words them: the disruption budget's carries the cause
    // DisruptionBudget (policyv1.DisruptionBudgetCause, serialized as `reason`); the one from
    // API Priority and Fairness carries none.
    if (this.pdbBlocked.has(`${namespace}/${name}`)) {
      const refusal = status(
        429,
        'TooManyRequests',
        "Cannot evict pod as it would violate the pod's disruption budget.",
      );
      refusal.details = {
        causes: [
          {
            reason: 'DisruptionBudget',
            message: `The disruption budget ${name}-pdb needs 4 healthy pods and has 4 currently`,
          },
        ],
      };
      return [429, refusal];
    }
    if (this.evictionThrottled.has(`${namespace}/${name}`)) {
      const throttled = status(
        429,
        'TooManyRequests',
        'Too many requests, please try again later.',
      );
      throttled.details = { retryAfterSeconds: 1 };
      return [429, throttled];
    }
    const [code, answer] = this.deletePod(
      namespace,
      name,
      body.deleteOptions?.preconditions?.uid,
      'eviction',
    );
    return code === 200
      ? [201, { kind: 'Status', apiVersion: 'v1', status: 'Success', code: 201 }]
      : [code, answer];
  }

  private deletePod(
    namespace: string,
    name: string,
    uid: string | undefined,
    via: Removal['via'],
  ): [number, Json] {
    const key = `${namespace}/${name}`;
    const pod = this.pods.get(key);
    if (!pod) return [404, status(404, 'NotFound', `pods "${name}" not found`)];
    if (uid !== undefined && pod.metadata.uid !== uid) {
      return [
        409,
        status(
          409,
          'Conflict',
          `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`,
        ),
      ];
    }
    this.pods.delete(key);
    this.removals.push({ namespace, name, via });
    this.removedAt.set(key, new Date());
    if (this.replacePods) this.replace(pod);
    return [200, pod];
  }

  /** Turns every replacement that is not Ready yet Ready, and its Deployment available again. */
  readyReplacements(): void {
    for (const replacement of this.replacements) if (!replacement.readyAt) this.ready(replacement);
  }

  /** The Deployment whose selector matches a pod's labels. */
  private deploymentOf(pod: Json): Json | undefined {
    return [...this.deployments.values()].find(
      (d) =>
        d.metadata.namespace === pod.metadata.namespace &&
        Object.entries(d.spec?.selector?.matchLabels ?? {}).every(
          ([k, v]) => pod.metadata.labels?.[k] === v,
        ),
    );
  }

  /** Changes a Deployment's available and ready replicas by `delta` (watchers see MODIFIED). */
  private shiftAvailable(deployment: Json | undefined, delta: number): void {
    if (!deployment) return;
    const status = deployment.status ?? {};
    const replicas = deployment.spec?.replicas ?? 1;
    status.availableReplicas = (status.availableReplicas ?? replicas) + delta;
    status.readyReplicas = (status.readyReplicas ?? replicas) + delta;
    deployment.status = status;
    this.addDeployment(deployment);
  }

  private replace(removed: Json): void {
    const { namespace, name } = removed.metadata;
    const newName = `${name}-r${this.replacements.length + 1}`;
    const pod = structuredClone(removed);
    pod.metadata = { ...pod.metadata, name: newName, uid: `uid-${newName}` };
    delete pod.metadata.resourceVersion;
    delete pod.metadata.deletionTimestamp;
    pod.status = {
      phase: 'Running',
      startTime: new Date().toISOString(),
      conditions: [{ type: 'Ready', status: 'False' }],
    };
    this.addPod(pod);
    this.shiftAvailable(this.deploymentOf(pod), -1);
    const replacement: Replacement = { namespace, name: newName, replaces: name };
    this.replacements.push(replacement);
    const after = this.replacePods?.readyAfterMs;
    if (after !== undefined) void this.sleep(after).then(() => this.ready(replacement));
  }

  private ready(replacement: Replacement): void {
    const pod = this.pods.get(`${replacement.namespace}/${replacement.name}`);
    if (!pod || replacement.readyAt) return;
    pod.status.conditions = [{ type: 'Ready', status: 'True' }];
    pod.metadata.resourceVersion = this.nextVersion();
    replacement.readyAt = new Date();
    this.shiftAvailable(this.deploymentOf(pod), +1);
  }

  private lease(
    method: string,
    namespace: string,
    name: string | undefined,
    body: Json | undefined,
    selector = '',
  ): [number, Json] {
    if (method === 'GET' && name)
      return this.get(this.leases, namespace, name, 'leases.coordination.k8s.io');
    if (method === 'GET')
      return this.listOf('leases', namespace, new URLSearchParams({ labelSelector: selector }));
    if (method === 'DELETE' && name) return this.deleteLease(namespace, name, body);
    const invalid = body && this.invalidLease(body);
    if (invalid) return [400, status(400, 'BadRequest', invalid)];
    if (method === 'POST' && body) {
      const key = `${namespace}/${body.metadata?.name}`;
      if (this.leases.has(key)) {
        return [
          409,
          status(
            409,
            'AlreadyExists',
            `leases.coordination.k8s.io "${body.metadata?.name}" already exists`,
          ),
        ];
      }
      return [201, this.storeLease(key, body)];
    }
    if (method === 'PUT' && name && body) {
      const key = `${namespace}/${name}`;
      const current = this.leases.get(key);
      if (!current)
        return [404, status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`)];
      if (body.metadata?.resourceVersion !== current.metadata.resourceVersion) {
        return [
          409,
          status(
            409,
            'Conflict',
            `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          ),
        ];
      }
      return [200, this.storeLease(key, body)];
    }
    return [405, status(405, 'MethodNotAllowed', `${method} not allowed`)];
  }

  /** DELETE with an optional resourceVersion precondition (409 when it no longer holds). */
  private deleteLease(namespace: string, name: string, body: Json | undefined): [number, Json] {
    const key = `${namespace}/${name}`;
    const current = this.leases.get(key);
    if (!current)
      return [404, status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`)];
    const wanted = body?.preconditions?.resourceVersion;
    if (wanted !== undefined && wanted !== current.metadata.resourceVersion) {
      return [
        409,
        status(
          409,
          'Conflict',
          `Precondition failed: ResourceVersion in precondition: ${wanted}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
        ),
      ];
    }
    this.leases.delete(key);
    current.metadata.resourceVersion = this.nextVersion();
    this.emit('leases', 'DELETED', current);
    return [200, { kind: 'Status', apiVersion: 'v1', status: 'Success', code: 200 }];
  }

  private invalidLease(body: Json): string | undefined {
    const duration = body.spec?.leaseDurationSeconds;
    if (duration !== undefined && !(duration > 0))
      return 'spec.leaseDurationSeconds: must be greater than 0';
    for (const field of ['acquireTime', 'renewTime']) {
      const value = body.spec?.[field];
      if (value !== undefined && !MICRO_TIME.test(value))
        return `spec.${field}: invalid MicroTime "${value}"`;
    }
    return undefined;
  }

  private storeLease(key: string, body: Json): Json {
    const stored = structuredClone(body);
    stored.metadata.resourceVersion = this.nextVersion();
    stored.metadata.uid ??= `lease-${this.version}`;
    const type = this.leases.has(key) ? 'MODIFIED' : 'ADDED';
    this.leases.set(key, stored);
    this.emit('leases', type, stored);
    return stored;
  }

  private createEvent(namespace: string, body: Json): [number, Json] {
    if (body.eventTime !== undefined && !MICRO_TIME.test(body.eventTime)) {
      return [400, status(400, 'BadRequest', `eventTime: invalid MicroTime "${body.eventTime}"`)];
    }
    if (body.eventTime && (!body.reportingComponent || !body.reportingInstance)) {
      return [
        400,
        status(
          400,
          'BadRequest',
          'reportingController and reportingInstance are required with eventTime',
        ),
      ];
    }
    const name =
      body.metadata?.name ?? `${body.metadata?.generateName ?? 'event.'}${this.nextVersion()}`;
    if (this.events.some((e) => e.metadata.namespace === namespace && e.metadata.name === name)) {
      return [
        409,
        status(409, 'AlreadyExists', `events "${name}" already exists`, { name, kind: 'events' }),
      ];
    }
    const stored = {
      ...body,
      metadata: { ...body.metadata, name, namespace, resourceVersion: this.nextVersion() },
    };
    this.events.push(stored);
    return [201, stored];
  }
}

async function readBody(req: IncomingMessage): Promise<Json | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, code: number, body: Json | string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(text);
}

/**
 * Stores `count` Deployments of about `bytes` each in the fake, as a big cluster holds them:
 * most of the size is what kubectl and the field manager leave (last-applied-configuration,
 * managedFields), which the service never reads. They share one filler string, so the fake
 * itself stays small; each list page serializes it once per Deployment. No watch event.
 */
export function seedFatDeployments(kube: FakeKubeApiServer, count: number, bytes = 10_240): void {
  const filler = 'x'.repeat(Math.max(0, bytes - 1500));
  for (let i = 0; i < count; i++) {
    const namespace = `team-${i % 50}`;
    const name = `service-${i}`;
    kube.deployments.set(`${namespace}/${name}`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        namespace,
        name,
        uid: `uid-fat-${i}`,
        resourceVersion: '1000',
        generation: 3,
        labels: { app: name, team: `team-${i % 50}` },
        annotations: {
          'deployment.kubernetes.io/revision': '3',
          'kubectl.kubernetes.io/last-applied-configuration': filler,
        },
        managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update' }],
      },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            containers: [
              {
                name: 'app',
                image: `registry.example.com/${name}:1.2.3`,
                env: [{ name: 'LOG_LEVEL', value: 'info' }],
                resources: { requests: { cpu: '100m', memory: '128Mi' } },
              },
            ],
          },
        },
      },
      status: { observedGeneration: 3, replicas: 3, updatedReplicas: 3, readyReplicas: 3 },
    });
  }
}
