import { describe, expect, it } from '@jest/globals';
import { configErrorOf } from '../support/config.js';
import { loadConfig, type Config } from '../../src/config.js';

const REQUIRED = { PROMETHEUS_URL: 'http://prometheus:9090', WEBHOOK_TOKEN: 't' };

describe('loadConfig: backend, coverage, cluster and deadline settings', () => {
  const defaults = loadConfig(REQUIRED);

  it.each<[string, keyof Config, unknown]>([
    ['MIN_SAMPLE_COVERAGE', 'minSampleCoverage', 1],
    ['CLUSTER', 'cluster', undefined],
    ['CLUSTER_LABEL', 'clusterLabel', 'cluster'],
    ['CLUSTER_IN_QUERY', 'clusterInQuery', false],
    ['WEBHOOK_DEADLINE', 'webhookDeadlineMs', 8000],
    ['PROMETHEUS_HEADERS', 'prometheusHeaders', {}],
    ['PROMETHEUS_CA_FILE', 'prometheusCaFile', undefined],
    ['CPU_SERIES_MATCHERS', 'cpuSeries', { extraMatchers: [], clusterMatcher: undefined }],
  ])('defaults %s (config.%s) to %p', (_name, key, expected) => {
    expect(defaults[key]).toEqual(expected);
  });

  it.each<[Record<string, string>, keyof Config, unknown]>([
    [{ MIN_SAMPLE_COVERAGE: '0.9' }, 'minSampleCoverage', 0.9],
    [
      { PROMETHEUS_HEADERS: 'X-Scope-OrgID=team-a' },
      'prometheusHeaders',
      { 'X-Scope-OrgID': 'team-a' },
    ],
    [
      { PROMETHEUS_HEADERS: 'X-Scope-OrgID=a|b, X-Extra = 1' },
      'prometheusHeaders',
      { 'X-Scope-OrgID': 'a|b', 'X-Extra': '1' },
    ],
    [
      { CPU_SERIES_MATCHERS: 'job="kubelet", metrics_path="/metrics/cadvisor"' },
      'cpuSeries',
      {
        extraMatchers: ['job="kubelet"', 'metrics_path="/metrics/cadvisor"'],
        clusterMatcher: undefined,
      },
    ],
    [
      { CLUSTER: 'eu-1', CLUSTER_LABEL: 'k8s_cluster', CLUSTER_IN_QUERY: 'true' },
      'cpuSeries',
      { extraMatchers: [], clusterMatcher: 'k8s_cluster="eu-1"' },
    ],
    [{ WEBHOOK_DEADLINE: '25s' }, 'webhookDeadlineMs', 25_000],
    [
      { PROMETHEUS_BASIC_AUTH_USER: '123456', PROMETHEUS_BASIC_AUTH_PASSWORD_FILE: '/s/pw' },
      'prometheusBasicAuthUser',
      '123456',
    ],
  ])('reads %p into config.%s', (env, key, expected) => {
    expect(loadConfig({ ...REQUIRED, ...env })[key]).toEqual(expected);
  });

  it.each([
    [{ MIN_SAMPLE_COVERAGE: '0' }, 'MIN_SAMPLE_COVERAGE: expected a share above 0 and at most 1'],
    [{ MIN_SAMPLE_COVERAGE: '1.5' }, 'MIN_SAMPLE_COVERAGE: expected a share above 0 and at most 1'],
    [{ CLUSTER_LABEL: 'my-cluster' }, 'CLUSTER_LABEL: expected a label name'],
    [{ CLUSTER_IN_QUERY: 'true' }, 'CLUSTER_IN_QUERY: needs CLUSTER'],
    [{ CPU_SERIES_MATCHERS: 'job=kubelet' }, 'CPU_SERIES_MATCHERS: expected label matchers'],
    [{ PROMETHEUS_HEADERS: 'X-Scope-OrgID' }, 'PROMETHEUS_HEADERS: expected Name=value pairs'],
    [
      { PROMETHEUS_HEADERS: 'Authorization=Bearer abc' },
      'PROMETHEUS_HEADERS: Authorization cannot be set here',
    ],
    [{ WEBHOOK_DEADLINE: '500ms' }, 'WEBHOOK_DEADLINE: expected at least 1s'],
    [
      { PROMETHEUS_BASIC_AUTH_USER: 'u' },
      'PROMETHEUS_BASIC_AUTH_USER: PROMETHEUS_BASIC_AUTH_USER and PROMETHEUS_BASIC_AUTH_PASSWORD_FILE go together',
    ],
    [
      {
        PROMETHEUS_BASIC_AUTH_USER: 'u',
        PROMETHEUS_BASIC_AUTH_PASSWORD_FILE: '/p',
        PROMETHEUS_BEARER_TOKEN_FILE: '/t',
      },
      'PROMETHEUS_BEARER_TOKEN_FILE: set either a bearer token or basic auth',
    ],
  ])('when %p, then the start fails naming the variable', (env, expected) => {
    expect(configErrorOf({ ...REQUIRED, ...env })).toContain(expected);
  });

  it.each([
    ['a value with a line break', 'X-Api-Key=k3y-s3cret\nX'],
    ['a reserved header', 'Authorization=Bearer k3y-s3cret'],
    ['a pair without a name', '=k3y-s3cret'],
  ])(
    'when PROMETHEUS_HEADERS is invalid (%s), then the error names the variable, never a value',
    (_name, value) => {
      const message = configErrorOf({ ...REQUIRED, PROMETHEUS_HEADERS: value });

      expect(message).toContain('PROMETHEUS_HEADERS:');
      expect(message).not.toContain('k3y-s3cret');
    },
  );

  it('when PROMETHEUS_URL carries a password and is invalid otherwise, then the error masks it', () => {
    const message = configErrorOf({ ...REQUIRED, PROMETHEUS_URL: 'ftp://user:s3cret@prom' });

    expect(message).toContain('ftp://***@prom');
    expect(message).not.toContain('s3cret');
  });
});
