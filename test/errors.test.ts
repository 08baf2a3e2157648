import { describe, expect, it } from '@jest/globals';
import { redactCredentials, UpstreamError } from '../src/errors.js';

describe('credentials echoed back by an upstream never reach a report or a log', () => {
  it.each([
    [
      'a bearer token',
      'denied: Authorization: Bearer s3cr3t-token',
      'denied: Authorization: Bearer ***',
    ],
    ['a basic credential', 'got header "Basic dXNlcjpwYXNz"', 'got header "Basic ***"'],
    [
      'a password in a URL',
      'proxy http://user:s3cr3t@prom:9090 failed',
      'proxy http://***@prom:9090 failed',
    ],
    ['nothing secret', 'Prometheus answered 503', 'Prometheus answered 503'],
  ])('masks %s', (_what, text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
  });

  it('applies to every UpstreamError message', () => {
    const error = new UpstreamError('prometheus', 'client', false, 'refused (400): Bearer abc.def');

    expect(error.message).toBe('refused (400): Bearer ***');
  });
});

describe('one masking function for URLs and upstream text', () => {
  it.each([
    [
      'a token in a query string',
      'http://prom/api?token=abc123&x=1',
      'http://prom/api?token=***&x=1',
    ],
    ['an access_token', 'https://h/q?access_token=s3cr3t', 'https://h/q?access_token=***'],
    [
      'a user and password',
      'https://12345:glc_abc@grafana.net/api/prom',
      'https://***@grafana.net/api/prom',
    ],
    [
      'a lower-case header echo',
      'authorization: bearer eyJhbGciOiJSUzI1',
      'authorization: bearer ***',
    ],
    [
      'prose about a bearer token',
      'missing or invalid bearer token in the header',
      'missing or invalid bearer token in the header',
    ],
  ])('masks %s', (_what, text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
  });
});
