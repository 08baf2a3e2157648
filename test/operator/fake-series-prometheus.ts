import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Prometheus for `check`: it answers `/api/v1/query` for `vector(1)` and for
 * `count(<metric>{...})` from a table of how many series each metric has, the way Prometheus
 * does (an empty vector when there are none). Anything else is a 400 bad_data.
 */
export class FakeSeriesPrometheus {
  /** Series per metric name; a metric absent here has none. */
  readonly series = new Map<string, number>();
  readonly queries: string[] = [];
  /** The alerting rules `/api/v1/rules` lists, as Prometheus reports them. */
  readonly alertRules: { name: string; health: string; query?: string; lastError?: string }[] = [];
  /** Answer every request with this HTTP status instead (e.g. 503). */
  failWith: number | undefined;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const params =
      req.method === 'POST'
        ? new URLSearchParams(Buffer.concat(chunks).toString())
        : url.searchParams;
    const query = params.get('query') ?? '';
    this.queries.push(query);
    if (this.failWith)
      return send(res, this.failWith, {
        status: 'error',
        errorType: 'unavailable',
        error: 'injected',
      });
    if (url.pathname === '/api/v1/rules') {
      const rules = this.alertRules.map((r) => ({ type: 'alerting', query: 'up', ...r }));
      return send(res, 200, { status: 'success', data: { groups: [{ name: 'fake', rules }] } });
    }
    if (url.pathname !== '/api/v1/query')
      return send(res, 404, { status: 'error', error: 'not found' });
    const result = this.answer(query);
    if (!result)
      return send(res, 400, {
        status: 'error',
        errorType: 'bad_data',
        error: `unexpected query ${query}`,
      });
    send(res, 200, { status: 'success', data: { resultType: 'vector', result } });
  }

  private answer(query: string) {
    const now = Date.now() / 1000;
    if (query === 'vector(1)') return [{ metric: {}, value: [now, '1'] }];
    const count = /^count\((\w+)\{/.exec(query);
    if (!count) return undefined;
    const n = this.series.get(count[1]!) ?? 0;
    return n > 0 ? [{ metric: {}, value: [now, String(n)] }] : [];
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
