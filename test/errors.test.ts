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
