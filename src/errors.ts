/** Which system outside the process an error came from. */
export type Upstream = 'prometheus' | 'kubernetes';

/**
 * A call to Prometheus or Kubernetes that failed. `retryable` errors (unreachable, timed out,
 * 5xx) mean a later try may succeed: the webhook answers 503 so that Alertmanager retries.
 * The message never carries request headers, so no credential can leak through it.
 */
export class UpstreamError extends Error {
  constructor(
    readonly upstream: Upstream,
    /** A short, low-cardinality label: network, timeout, server, client, forbidden, bad-response. */
    readonly kind: string,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** A request the webhook refuses, with the status code and a message naming the problem. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
