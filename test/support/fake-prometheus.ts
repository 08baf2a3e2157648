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

export class FakePrometheus extends LoopbackServer {
  /** CPU in cores by `namespace/pod`. */
  readonly cpu = new Map<string, number>();
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
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        status: 'success',
        data: { resultType: 'vector', result: this.answer(query, params.get('time')) },
      }),
    );
  }

  private answer(query: string, time: string | null) {
    const namespace = /namespace="([^"]+)"/.exec(query)?.[1];
    const podRegex = /pod=~"([^"]*)"/.exec(query)?.[1];
    if (!namespace || podRegex === undefined) return [];
    const pods = new RegExp(`^(?:${podRegex.replace(/\\\\/g, '\\')})$`);
    const at = Number(time ?? Date.now() / 1000);
    return [...this.cpu.entries()]
      .map(([key, value]) => [key.split('/'), value] as const)
      .filter(([[ns, pod]]) => ns === namespace && pods.test(pod!))
      .map(([[, pod], value]) => ({ metric: { pod }, value: [at, String(value)] }));
  }
}
