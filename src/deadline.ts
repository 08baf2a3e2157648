import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * One webhook request's deadline. The webhook answers by `expiresAt` whatever happens; every
 * call to Prometheus or Kubernetes made on the request's behalf gets a timeout derived from what
 * is left of it, and the irreversible part (the Lease write, then the removals) starts only
 * while enough time is left to finish it, and never once the request was answered 503.
 */
export class Deadline {
  private state: 'open' | 'committed' | 'abandoned' = 'open';

  constructor(
    /** Epoch milliseconds by which the webhook answers. */
    readonly expiresAt: number,
    /** Time kept for the irreversible part: the verification must be done before it. */
    readonly actReserveMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A deadline `ms` from now. */
  static in(ms: number, actReserveMs: number, now: () => number = Date.now): Deadline {
    return new Deadline(now() + ms, actReserveMs, now);
  }

  remainingMs(): number {
    return this.expiresAt - this.now();
  }

  /** Whether the irreversible part could start now (asked before its preparations too). */
  leavesTimeToAct(): boolean {
    return this.state !== 'abandoned' && this.remainingMs() >= this.actReserveMs;
  }

  /**
   * Called before each irreversible part (one per Deployment). True when it may start: the
   * request was not answered yet and at least `actReserveMs` is left. From then on the request
   * is never abandoned: its answer is the real outcome.
   */
  commit(): boolean {
    if (!this.leavesTimeToAct()) return false;
    this.state = 'committed';
    return true;
  }

  /**
   * Called when the webhook wants to answer 503 at the deadline. False when the irreversible
   * part already started: then the request must wait for its real outcome.
   */
  abandon(): boolean {
    if (this.state === 'committed') return false;
    this.state = 'abandoned';
    return true;
  }

  get committed(): boolean {
    return this.state === 'committed';
  }
}

const current = new AsyncLocalStorage<Deadline>();

/**
 * Runs `task` with `deadline` as the deadline of every upstream call made inside it. The adapters
 * read it through `callTimeoutMs`, so the ports stay free of it and each call site needs nothing.
 */
export function withDeadline<T>(
  deadline: Deadline | undefined,
  task: () => Promise<T>,
): Promise<T> {
  return deadline ? current.run(deadline, task) : task();
}

/** The deadline of the request on whose behalf the caller runs, if any. */
export function currentDeadline(): Deadline | undefined {
  return current.getStore();
}

/**
 * The timeout of one upstream call: its own limit, shortened to what is left of the request's
 * deadline. Before the irreversible part the act reserve is kept out of it, so that a slow
 * Prometheus or API server ends in a timeout (retryable, 503) early enough to answer with the
 * real reason. Never below 1 ms: a call with no time left fails at once as a timeout.
 */
export function upstreamTimeoutMs(limitMs: number): number {
  const deadline = currentDeadline();
  if (!deadline) return limitMs;
  const reserve = deadline.committed ? 0 : deadline.actReserveMs;
  return Math.max(1, Math.min(limitMs, deadline.remainingMs() - reserve));
}

/** Thrown when the irreversible part may not start: too little time left, or already answered. */
export class DeadlineExceeded extends Error {
  readonly retryable = true;
  constructor(
    message = 'too little time was left before the webhook deadline to act safely; retry later',
  ) {
    super(message);
    this.name = 'DeadlineExceeded';
  }
}

/** Throws DeadlineExceeded unless the irreversible part may start now (see Deadline.commit). */
export function beginIrreversible(deadline: Deadline | undefined): void {
  if (deadline && !deadline.commit()) throw new DeadlineExceeded();
}

/** Throws DeadlineExceeded when the irreversible part could not start now (nothing commits). */
export function requireTimeToAct(deadline: Deadline | undefined): void {
  if (deadline && !deadline.leavesTimeToAct()) throw new DeadlineExceeded();
}

/**
 * beginIrreversible for one Deployment's writes, asked right before the first of them (after
 * every queue) and only then: a later write of the same action is never refused halfway.
 */
export function firstWriteGate(deadline: Deadline | undefined): () => void {
  let begun = false;
  return () => {
    if (begun) return;
    beginIrreversible(deadline);
    begun = true;
  };
}
