import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.js';

/**
 * A fake Prometheus HTTP API (`/api/v1/query`) that answers the verification query from a
 * table of per-pod CPU, the way Prometheus would: a vector with one series per pod that has
 * samples, `pod` label set, values as strings. Faults can be injected.
 */
export interface PrometheusFault {
  delayMs?: number;
  status?: number;
  rawBody?: string;
  /** Content-Type of a status/rawBody answer (default application/json). */
  contentType?: string;
  destroy?: boolean;
  times?: number;
  /** Only queries matching this are affected (default: all). */
  match?: RegExp;
  /** The fault hits the rules API (`/api/v1/rules`) instead of the queries (default: queries). */
  rules?: boolean;
}

/** One alert a rule of the fake rule engine has active, as `/api/v1/rules` lists it. */
export interface FakeRuleAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Default `firing`. */
  state?: 'pending' | 'firing' | 'inactive';
}

/**
 * The first syntax error Prometheus's parser would report for an expression, in its words
 * (`1:COL: parse error: ...`), or undefined. Only what the tests need: unbalanced brackets and
 * unterminated strings, which is where a hand-written or badly templated guard breaks.
 */
export function promqlSyntaxError(query: string): string | undefined {
  const closing: Record<string, string> = { '(': ')', '{': '}', '[': ']' };
  const open: { char: string; at: number }[] = [];
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (c === '"' || c === "'" || c === '`') {
      const end = query.indexOf(c, i + 1);
      if (end < 0) return `1:${i + 1}: parse error: unterminated quoted string`;
      i = end;
    } else if (closing[c]) {
      open.push({ char: c, at: i });
    } else if (c === ')' || c === '}' || c === ']') {
      const last = open.pop();
      if (!last || closing[last.char] !== c) return `1:${i + 1}: parse error: unexpected "${c}"`;
    }
  }
  const unclosed = open.pop();
  if (unclosed) {
    const inside = { '(': 'parenthesis', '{': 'braces', '[': 'brackets' }[unclosed.char];
    return `1:${query.length + 1}: parse error: unexpected end of input inside ${inside}`;
  }
  if (query.trim() === '') return '1:1: parse error: no expression found in input';
  return undefined;
}

/**
 * How a Prometheus-compatible backend behaves beyond the plain API, as the real ones do.
 * - `authorization`: a proxy or Grafana Cloud: 401 text/plain unless the Authorization header
 *   equals what this returns now (a function, so a test can rotate the credential).
 * - `tenant`: Mimir/Cortex: 401 text/plain `no org id` without an X-Scope-OrgID header; another
 *   tenant's data (nothing) for another tenant.
 * - `degraded`: a Thanos store or a VictoriaMetrics vmstorage node is down and the series of the
 *   pods matching `missing` are on it. Thanos answers 200 with `warnings` and the other series
 *   (partial response, its default), or 500 when asked `partial_response=false`; VictoriaMetrics
 *   answers 200 with `isPartial: true`, or 503 when asked `deny_partial_response=1`.
 *   `ignoresDenyParam` plays a backend set to answer partially whatever the client asks.
 */
export interface BackendBehaviour {
  authorization?: () => string;
  tenant?: string;
  degraded?: {
    style: 'thanos' | 'victoriametrics';
    missing: RegExp;
    ignoresDenyParam?: boolean;
  };
}

/** One query as the fake received it. */
export interface ReceivedQuery {
  query: string;
  time: string | null;
  authorization: string | undefined;
  /** Every form/query parameter sent. */
  params: Record<string, string>;
  tenant: string | undefined;
}

const STORE_DOWN =
  'receive series from Addr: 10.0.3.7:10901 LabelSets: {replica="b"}: rpc error: code = Unavailable';
const VMSTORAGE_DOWN =
  'cannot fetch query results from vmstorage nodes: 1 of 3 vmstorage nodes unavailable';

export class FakePrometheus extends LoopbackServer {
  /** CPU in cores by `namespace/pod`. */
  readonly cpu = new Map<string, number>();
  /**
   * What any other expression (a guard) returns, by the exact expression: labels (`__name__`
   * included) and value. A well-formed expression not in the table returns no series, as a
   * query for a metric Prometheus has never seen does.
   */
  readonly series = new Map<string, { labels: Record<string, string>; value: number }[]>();
  readonly queries: ReceivedQuery[] = [];
  readonly faults: PrometheusFault[] = [];
  behaviour: BackendBehaviour = {};
  /**
   * The rule engine: the alerts its alerting rules have active, one rule per alertname, served
   * at `/api/v1/rules` as Prometheus 2.42 serves them (vmalert's shape with `rulesStyle`).
   */
  readonly ruleAlerts: FakeRuleAlert[] = [];
  /** Every request to `/api/v1/rules`, with its parameters. */
  readonly rulesRequests: ReceivedQuery[] = [];
  rulesStyle: 'prometheus' | 'vmalert' = 'prometheus';
  /** Where the API lives, e.g. `/prometheus` as in Mimir; the URL to give the service includes it. */
  pathPrefix = '';

  fail(fault: PrometheusFault): void {
    this.faults.push({ times: 1, ...fault });
  }

  /** Makes the rule engine have this alert active (again a no-op when it already has it). */
  fireRule(alert: FakeRuleAlert): void {
    const key = JSON.stringify([alert.labels, alert.annotations, alert.state]);
    const known = this.ruleAlerts.some(
      (a) => JSON.stringify([a.labels, a.annotations, a.state]) === key,
    );
    if (!known) this.ruleAlerts.push(alert);
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const params =
      req.method === 'POST'
        ? new URLSearchParams(Buffer.concat(chunks).toString())
        : url.searchParams;
    const query = params.get('query') ?? '';
    const path = url.pathname.startsWith(this.pathPrefix)
      ? url.pathname.slice(this.pathPrefix.length)
      : url.pathname;
    const isRules = path === '/api/v1/rules';
    const index = this.faults.findIndex(
      (f) => (f.rules ?? false) === isRules && (!f.match || f.match.test(query)),
    );
    const fault = this.faults[index];
    if (fault && --fault.times! <= 0) this.faults.splice(index, 1);
    if (fault?.delayMs) await this.sleep(fault.delayMs);
    if (fault?.destroy) return void req.socket.destroy();
    if (fault?.status || fault?.rawBody !== undefined) {
      res.writeHead(fault.status ?? 200, {
        'content-type': fault.contentType ?? 'application/json',
      });
      return void res.end(
        fault.rawBody ??
          JSON.stringify({ status: 'error', errorType: 'internal', error: 'injected fault' }),
      );
    }
    if ((path !== '/api/v1/query' && !isRules) || !url.pathname.startsWith(this.pathPrefix)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('404 page not found');
    }
    const refusal = this.refusal(req);
    if (refusal) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(`${refusal}\n`);
    }
    if (isRules) return this.answerRules(req, url.searchParams, res);
    this.queries.push({
      query,
      time: params.get('time'),
      authorization: req.headers.authorization,
      params: Object.fromEntries(params),
      tenant: req.headers['x-scope-orgid'] as string | undefined,
    });
    const syntaxError = promqlSyntaxError(query);
    if (syntaxError) {
      res.writeHead(400, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({ status: 'error', errorType: 'bad_data', error: syntaxError }),
      );
    }
    const result = this.forTenant(req) ? this.answer(query, params.get('time')) : [];
    const [status, body] = this.degradedAnswer(params, result) ?? [
      200,
      { status: 'success', data: { resultType: 'vector', result } },
    ];
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  /** `/api/v1/rules`: one alerting rule per alertname, with its active alerts. */
  private answerRules(req: IncomingMessage, params: URLSearchParams, res: ServerResponse): void {
    this.rulesRequests.push({
      query: '',
      time: null,
      authorization: req.headers.authorization,
      params: Object.fromEntries(params),
      tenant: req.headers['x-scope-orgid'] as string | undefined,
    });
    const byName = new Map<string, FakeRuleAlert[]>();
    for (const alert of this.forTenant(req) ? this.ruleAlerts : []) {
      const name = alert.labels.alertname ?? '';
      byName.set(name, [...(byName.get(name) ?? []), alert]);
    }
    const vmalert = this.rulesStyle === 'vmalert';
    const rules = [...byName].map(([name, alerts]) => ({
      ...(vmalert && { id: '1', group_id: '2', datasourceType: 'prometheus' }),
      state: alerts.some((a) => (a.state ?? 'firing') === 'firing') ? 'firing' : 'pending',
      name,
      query: 'stddev by (namespace, deployment) (namespace_deployment_pod:cpu_usage:rate) > 0.3',
      duration: 600,
      labels: {},
      annotations: {},
      alerts: alerts.map((a) => ({
        ...(vmalert && { id: '3', name, group_id: '2', expression: '', source: '' }),
        labels: a.labels,
        annotations: a.annotations,
        state: a.state ?? 'firing',
        activeAt: '2026-11-28T16:34:56.709Z',
        value: '5.4e-01',
      })),
      health: 'ok',
      type: 'alerting',
    }));
    const data = { groups: [{ name: 'pod-rebalancer', file: 'rules.yml', interval: 30, rules }] };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'success', data }));
  }

  /** Why the backend refuses the request before looking at it (401), if it does. */
  private refusal(req: IncomingMessage): string | undefined {
    const { authorization, tenant } = this.behaviour;
    if (authorization && req.headers.authorization !== authorization()) return 'Unauthorized';
    if (tenant && !req.headers['x-scope-orgid']) return 'no org id';
    return undefined;
  }

  private forTenant(req: IncomingMessage): boolean {
    const { tenant } = this.behaviour;
    return !tenant || req.headers['x-scope-orgid'] === tenant;
  }

  /** A degraded backend's answer: an error when asked for all or nothing, else a partial one. */
  private degradedAnswer(
    params: URLSearchParams,
    result: { metric: { pod?: string } }[],
  ): [number, unknown] | undefined {
    const degraded = this.behaviour.degraded;
    if (!degraded) return undefined;
    const kept = result.filter((series) => !degraded.missing.test(series.metric.pod ?? ''));
    const data = { resultType: 'vector', result: kept };
    if (degraded.style === 'thanos') {
      if (params.get('partial_response') === 'false' && !degraded.ignoresDenyParam) {
        // What Thanos Querier answers with partial_response=false while a store is down.
        return [422, { status: 'error', errorType: 'execution', error: STORE_DOWN }];
      }
      return [200, { status: 'success', data, warnings: [STORE_DOWN] }];
    }
    if (params.get('deny_partial_response') === '1' && !degraded.ignoresDenyParam) {
      return [503, { status: 'error', errorType: '503', error: VMSTORAGE_DOWN }];
    }
    return [200, { status: 'success', isPartial: true, data }];
  }

  private answer(query: string, time: string | null) {
    const at = Number(time ?? Date.now() / 1000);
    // A guard is sent counted (`count(expr)`): one sample, the number of series, or none.
    const counted = /^count\((.*)\)$/s.exec(query)?.[1];
    if (counted !== undefined) {
      const n = (this.series.get(counted) ?? []).length;
      return n > 0 ? [{ metric: {}, value: [at, String(n)] }] : [];
    }
    const listed = this.series.get(query);
    if (listed) return listed.map((s) => ({ metric: s.labels, value: [at, String(s.value)] }));
    const namespace = /namespace="([^"]+)"/.exec(query)?.[1];
    const podRegex = /pod=~"([^"]*)"/.exec(query)?.[1];
    if (!namespace || podRegex === undefined) return [];
    const pods = new RegExp(`^(?:${podRegex.replace(/\\\\/g, '\\')})$`);
    return [...this.cpu.entries()]
      .map(([key, value]) => [key.split('/'), value] as const)
      .filter(([[ns, pod]]) => ns === namespace && pods.test(pod!))
      .map(([[, pod], value]) => ({ metric: { pod }, value: [at, String(value)] }));
  }
}
