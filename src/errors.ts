/** Which system outside the process an error came from. */
export type Upstream = 'prometheus' | 'kubernetes';

/**
 * Masks credentials in text that is about to be printed or logged: an Authorization value an
 * upstream echoes back (Bearer/Basic), the `user:password@` of a URL, and secret-looking query
 * parameters (`?token=`, `access_token`, `password`, `api_key`). The one masking function:
 * errors, `check`, `replay --url` and the configuration's messages all go through it.
 */
export function redactCredentials(text: string): string {
  return (
    text
      .replace(/\b(Bearer|Basic)\s+[^\s"',;)]+/g, '$1 ***')
      // In lower case, only what looks like a credential: "bearer token" in prose stays readable.
      .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]{8,}/gi, '$1 ***')
      .replace(/\/\/[^/@\s"']+@/g, '//***@')
      .replace(
        /([?&](?:access_token|token|password|passwd|api_key|apikey|key|secret)=)[^&\s"']*/gi,
        '$1***',
      )
  );
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
