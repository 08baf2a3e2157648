import type { NextFunction, Request, Response } from 'express';
import { Deadline } from '../deadline.js';
import { RETRY_AFTER_SECONDS } from './webhook.js';

/** How much webhook work the service takes on at once, and how long one request may take. */
export interface WebhookLimits {
  /** Requests handled at the same time. */
  maxInFlight: number;
  /** Requests waiting for a free slot; past this they are refused at once. */
  maxQueued: number;
  /**
   * Longest a request may take, queueing included, before it is answered 503. Below
   * Alertmanager's shortest webhook timeout (10 s), so that it gets an answer and retries
   * instead of giving up on a dropped connection.
   */
  deadlineMs: number;
  /**
   * Time kept, inside the deadline, for the irreversible part (the Lease write, the removals,
   * the Event): it starts only while this much is left, and upstream calls before it end early
   * enough to leave it (src/deadline.ts).
   */
  actReserveMs: number;
  /** Sent as Retry-After with each 503. */
  retryAfterSeconds: number;
  /**
   * Time for the whole body to arrive once its headers have: a slow sender gets 408 and its
   * connection closed. The body is read before a handling slot is taken, so a slow body never
   * holds one.
   */
  bodyTimeoutMs: number;
}

export const DEFAULT_WEBHOOK_LIMITS: Readonly<WebhookLimits> = Object.freeze({
  maxInFlight: 32,
  maxQueued: 128,
  deadlineMs: 8000,
  actReserveMs: 2000,
  retryAfterSeconds: RETRY_AFTER_SECONDS,
  bodyTimeoutMs: 5000,
});

/** An express handler that ends by calling `next` (with an error, or nothing). */
export type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/**
 * Bounds the time a request's body may take to arrive (see bodyTimeoutMs) while `read` reads
 * it: past it, 408 and the connection closed, whatever the body parser is still waiting for.
 * The reader's callback ends the wait, and so does the response's close: a compressed body
 * whose client leaves mid-way keeps the parser waiting on its decompressor for good.
 */
export function bodyWithin(timeoutMs: number) {
  return (read: Middleware): Middleware =>
    (req, res, next) => {
      const timer = setTimeout(() => {
        if (!res.headersSent) {
          res.setHeader('Connection', 'close');
          res.status(408).json({
            error: `the request body did not arrive within ${timeoutMs / 1000}s of its headers`,
            requestId: res.locals.requestId,
          });
        }
        // The parser's own error that follows (an aborted body) finds the answer already sent.
        res.once('finish', () => req.socket.destroy());
      }, timeoutMs);
      res.once('close', () => clearTimeout(timer));
      read(req, res, (error?: unknown) => {
        clearTimeout(timer);
        next(error);
      });
    };
}

/**
 * Why a request was answered 503 here rather than by the pipeline: `busy` (the queue was full),
 * `expired` (it waited in the queue until the deadline; the handler never saw it) or `deadline`
 * (the handler was still working at the deadline; it finishes, its late answer is dropped).
 */
export type Refusal = 'busy' | 'expired' | 'deadline';

export interface BoundedWorkOptions extends Partial<WebhookLimits> {
  /** Told of every 503 given here (for the log and the requests metric). */
  onRefused?: (refusal: Refusal, req: Request, res: Response) => void;
}

/** A counting semaphore with a bounded FIFO of waiters. */
class WorkSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly maxQueued: number,
  ) {}

  /** Starts `start` now, or queues it, or refuses it when the queue is full too. */
  request(start: () => void): 'started' | 'queued' | 'full' {
    if (this.running < this.max) {
      this.running++;
      start();
      return 'started';
    }
    if (this.waiting.length >= this.maxQueued) return 'full';
    this.waiting.push(start);
    return 'queued';
  }

  /** Takes a queued start out before it ran; false when it already started. */
  withdraw(start: () => void): boolean {
    const index = this.waiting.indexOf(start);
    if (index < 0) return false;
    this.waiting.splice(index, 1);
    return true;
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

const MESSAGES: Record<Refusal, string> = {
  busy: 'too many webhook requests in flight; retry later',
  expired: 'waited too long for a free slot; retry later',
  deadline:
    'handling took longer than the deadline; retry later (nothing was removed: past the deadline no Lease is written and no pod removed)',
};

function refuse(res: Response, refusal: Refusal, retryAfterSeconds: number): void {
  res.setHeader('Retry-After', String(retryAfterSeconds));
  res.status(503).json({ error: MESSAGES[refusal], requestId: res.locals.requestId });
}

/**
 * The webhook's work for one request, under its deadline. It answers through `res`, unless the
 * deadline answered first (`res.headersSent`): then its late answer is dropped. A rejection goes
 * to the app's error handler, which drops it the same way.
 */
export type BoundedHandler = (req: Request, res: Response, deadline: Deadline) => Promise<void>;

/**
 * Bounds the webhook's work: at most `maxInFlight` requests are handled at once and
 * `maxQueued` wait; anything beyond is answered 503 with Retry-After at once, and so is a
 * request not done within `deadlineMs`. Alertmanager retries on 503; the cooldown Lease, taken
 * before any pod is removed, makes the retry of a request that went on to act a no-op.
 *
 * A slot is held until the handler's promise settles, not until an answer is sent: after a
 * deadline 503 the work goes on until it ends, so the work in flight stays bounded even when
 * clients give up. (The response is never wrapped: patching `res.end` on every request cost the
 * alert storm about 15 % of its CPU per request, issue 22.)
 */
export function boundedWork(options: BoundedWorkOptions = {}) {
  const limits = { ...DEFAULT_WEBHOOK_LIMITS, ...options };
  const slots = new WorkSlots(limits.maxInFlight, limits.maxQueued);
  return (work: BoundedHandler) =>
    (req: Request, res: Response, next: NextFunction): void => {
      // The one deadline of this request: the pipeline and the adapters read it (src/deadline.ts).
      const deadline = Deadline.in(limits.deadlineMs, limits.actReserveMs);
      const answer = (refusal: Refusal) => {
        refuse(res, refusal, limits.retryAfterSeconds);
        options.onRefused?.(refusal, req, res);
      };
      const finish = () => {
        clearTimeout(timer);
        slots.release();
      };
      const start = () => {
        let working: Promise<void>;
        try {
          working = work(req, res, deadline);
        } catch (error) {
          // A handler that throws before returning its promise still gives its slot back.
          working = Promise.reject(error);
        }
        working.then(finish, (error: unknown) => {
          finish();
          next(error);
        });
      };
      const timer = setTimeout(() => {
        if (res.headersSent) return;
        if (slots.withdraw(start)) answer('expired');
        // Once the irreversible part started, the answer is its real outcome: its calls are
        // bounded by the deadline, so it comes moments later. Before that, a 503 now, and the
        // pipeline will not start it any more (Deadline.commit refuses).
        else if (deadline.abandon()) answer('deadline');
      }, limits.deadlineMs);
      const admitted = slots.request(start);
      if (admitted === 'full') {
        clearTimeout(timer);
        answer('busy');
      } else if (admitted === 'queued') {
        // A client that leaves while queued gives its place back; one that leaves while
        // handled does not: its work goes on until the handler ends it.
        res.once('close', () => {
          if (slots.withdraw(start)) clearTimeout(timer);
        });
      }
    };
}
