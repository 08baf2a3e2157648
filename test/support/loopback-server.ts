import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * What the fake servers share: listening on 127.0.0.1, delays that stop() cancels (so no timer
 * outlives a test), and a stop that drops open connections.
 */
export abstract class LoopbackServer {
  private server: Server | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  url = '';
  /** TCP connections accepted so far (keep-alive reuses them). */
  connections = 0;
  /** Requests not yet answered, and the most there ever were at once (watches count while open). */
  inFlight = 0;
  maxInFlight = 0;

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  /** Listens on 127.0.0.1; with `tls` (PEM certificate and key), over https. */
  async start(port = 0, tls?: { cert: string; key: string }): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
      res.once('close', () => this.inFlight--);
      void this.handle(req, res);
    };
    this.server = tls ? createHttpsServer(tls, handler) : createServer(handler);
    this.server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    const scheme = tls ? 'https' : 'http';
    this.url = `${scheme}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = undefined;
  }

  /** A delay that stop() cancels. */
  protected sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}
