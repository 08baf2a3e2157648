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
