/** Concurrency helpers the pipeline uses; nothing here knows about Deployments or alerts. */

/**
 * Runs `task` for each key strictly one after another, so that two requests for the same
 * Deployment never interleave in this process (the Lease covers other processes).
 */
export function keyedSerializer() {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}

/**
 * Runs at most `limit` tasks at once; the others wait their turn in order. Bounds the calls in
 * flight so that none waits for a connection until its own per-request timeout runs out.
 */
export function limiter(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
