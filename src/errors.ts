/** Which system outside the process an error came from. */
export type Upstream = 'prometheus' | 'kubernetes';

/**
 * Masks credentials an upstream might echo back in its error text (a proxy repeating the
 * Authorization header, a URL with a password), so they never reach a report, log or Event.
 */
export function redactCredentials(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[^\s"',;)]+/gi, '$1 ***')
    .replace(/\/\/[^/@\s]+@/g, '//***@');
}

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
    super(redactCredentials(message));
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
