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
  destroy?: boolean;
  times?: number;
  /** Only queries matching this are affected (default: all). */
  match?: RegExp;
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

export class FakePrometheus extends LoopbackServer {
  /** CPU in cores by `namespace/pod`. */
  readonly cpu = new Map<string, number>();
  /**
   * What any other expression (a guard) returns, by the exact expression: labels (`__name__`
   * included) and value. A well-formed expression not in the table returns no series, as a
   * query for a metric Prometheus has never seen does.
   */
  readonly series = new Map<string, { labels: Record<string, string>; value: number }[]>();
  readonly queries: { query: string; time: string | null; authorization: string | undefined }[] =
    [];
  readonly faults: PrometheusFault[] = [];

  fail(fault: PrometheusFault): void {
    this.faults.push({ times: 1, ...fault });
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
    const index = this.faults.findIndex((f) => !f.match || f.match.test(query));
    const fault = this.faults[index];
    if (fault && --fault.times! <= 0) this.faults.splice(index, 1);
    if (fault?.delayMs) await this.sleep(fault.delayMs);
    if (fault?.destroy) return void req.socket.destroy();
    if (fault?.status || fault?.rawBody !== undefined) {
      res.writeHead(fault.status ?? 200, { 'content-type': 'application/json' });
      return void res.end(
        fault.rawBody ??
          JSON.stringify({ status: 'error', errorType: 'internal', error: 'injected fault' }),
      );
    }
    if (url.pathname !== '/api/v1/query') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('404 page not found');
    }
    this.queries.push({
      query,
      time: params.get('time'),
      authorization: req.headers.authorization,
    });
    const syntaxError = promqlSyntaxError(query);
    if (syntaxError) {
      res.writeHead(400, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({ status: 'error', errorType: 'bad_data', error: syntaxError }),
      );
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        status: 'success',
        data: { resultType: 'vector', result: this.answer(query, params.get('time')) },
      }),
    );
  }

  private answer(query: string, time: string | null) {
    const at = Number(time ?? Date.now() / 1000);
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
