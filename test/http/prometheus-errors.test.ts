import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrometheusMetricsSource } from '../../src/adapters/prometheus.js';
import { UpstreamError } from '../../src/errors.js';
import { FakePrometheus, type PrometheusFault } from '../support/fake-prometheus.js';

// Status first, whatever the body: a proxy's 401 text/plain is as final as Prometheus's own 400
// JSON, and a 502 HTML page from a load balancer is as retryable as Prometheus's 503 JSON.

let prom: FakePrometheus;
beforeAll(async () => {
  prom = await new FakePrometheus().start();
  prom.cpu.set('shop/web-1', 0.5);
});
afterAll(() => prom.stop());

async function failureOf(fault: PrometheusFault, timeoutMs = 2000): Promise<UpstreamError> {
  prom.fail(fault);
  const source = new PrometheusMetricsSource({ url: prom.url, timeoutMs });
  try {
    await source.podCpu({ namespace: 'shop', pods: ['web-1'], windowMs: 300_000 });
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
  throw new Error('expected the query to fail');
}

const text = (status: number, body: string, contentType = 'text/plain; charset=utf-8') => ({
  status,
  rawBody: body,
  contentType,
});
const json = (status: number, errorType: string, error: string) => ({
  status,
  rawBody: JSON.stringify({ status: 'error', errorType, error }),
});

describe('Prometheus errors are classified by HTTP status first', () => {
  it.each<[string, string, boolean, PrometheusFault]>([
    ['401 text/plain from a proxy or Mimir', 'forbidden', false, text(401, 'no org id\n')],
    ['403 HTML from an auth proxy', 'forbidden', false, text(403, '<html>No</html>', 'text/html')],
    ['400 bad_data JSON (our query is wrong)', 'client', false, json(400, 'bad_data', 'parse')],
    [
      '422 execution JSON (Thanos: a store is down)',
      'server',
      true,
      json(422, 'execution', 'rpc error: code = Unavailable'),
    ],
    [
      '422 whose body names a failed store',
      'server',
      true,
      text(422, 'fetch series: store 10.0.3.7:10901 unavailable'),
    ],
    [
      '422 of another kind (a query the backend will not run)',
      'client',
      false,
      json(422, 'bad_data', 'too many samples'),
    ],
    ['404 text/plain (a wrong path in the URL)', 'client', false, text(404, '404 page not found')],
    ['429 text/plain (a rate limit)', 'server', true, text(429, 'too many outstanding requests')],
    ['502 HTML from a load balancer', 'server', true, text(502, '<html>Bad</html>', 'text/html')],
    ['503 JSON unavailable', 'server', true, json(503, 'unavailable', 'shutting down')],
    [
      '200 that is not the API (a login page)',
      'bad-response',
      true,
      text(200, '<html>', 'text/html'),
    ],
    ['a dropped connection', 'network', true, { destroy: true }],
  ])(
    'when Prometheus answers %s, then kind %s, retryable %s',
    async (_case, kind, retryable, fault) => {
      const error = await failureOf(fault);

      expect({ kind: error.kind, retryable: error.retryable }).toEqual({ kind, retryable });
    },
  );

  it('when the answer is later than the timeout, then a retryable timeout', async () => {
    const error = await failureOf({ delayMs: 600 }, 150);

    expect({ kind: error.kind, retryable: error.retryable }).toEqual({
      kind: 'timeout',
      retryable: true,
    });
  });

  it('when the backend refuses with a text body, then the message quotes it (masked)', async () => {
    const error = await failureOf(text(401, 'invalid credentials: Bearer abc.def.ghi\n'));

    expect(error.message).toBe(
      'Prometheus refused the query (401): invalid credentials: Bearer ***',
    );
  });
});
