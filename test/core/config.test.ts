import { describe, expect, it } from '@jest/globals';
import { configErrorOf } from '../support/config.js';
import {
  ConfigError,
  DEFAULT_CPU_STDDEV_THRESHOLD,
  DEFAULT_MIN_PODS,
  loadConfig,
  SETTINGS,
  type Config,
} from '../../src/config.js';

const TOKEN = 'tok-3f9a1c7e5b2d8046';
const REQUIRED = { PROMETHEUS_URL: 'http://prometheus:9090', WEBHOOK_TOKEN: TOKEN };

/** The problems loadConfig reports for `env`; fails the test if it reports none. */
function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected loadConfig to reject the environment');
}

describe('loadConfig: defaults', () => {
  const config = loadConfig(REQUIRED);

  it.each<[string, keyof Config, unknown]>([
    ['PORT', 'port', 8080],
    ['PROMETHEUS_TIMEOUT', 'prometheusTimeoutMs', 10_000],
    ['PROMETHEUS_BEARER_TOKEN_FILE', 'prometheusBearerTokenFile', undefined],
    ['WEBHOOK_TOKEN_FILE', 'webhookTokenFile', undefined],
    ['ALERT_NAMES', 'alertNames', new Set(['DeploymentCPUImbalance'])],
    ['CPU_STDDEV_THRESHOLD', 'threshold', 0.3],
    ['METRICS_WINDOW', 'metricsWindowMs', 5 * 60_000],
    ['COOLDOWN', 'cooldownMs', 15 * 60_000],
    ['MAX_COOLDOWN', 'maxCooldownMs', 24 * 3_600_000],
    ['EFFECTIVE_REDUCTION', 'effectiveReduction', 0.3],
    ['INEFFECTIVE_LIMIT', 'ineffectiveLimit', 3],
    ['MIN_PODS', 'minPods', 3],
    ['MIN_POD_AGE', 'minPodAgeMs', 10 * 60_000],
    ['ACTION', 'action', 'evict'],
    ['DRY_RUN', 'dryRun', false],
    ['ACTIVE_WINDOW', 'activeWindow', undefined],
    ['LOG_LEVEL', 'logLevel', 'info'],
    ['TLS_CERT_FILE', 'tlsCertFile', undefined],
    ['TLS_KEY_FILE', 'tlsKeyFile', undefined],
    ['TLS_CLIENT_CA_FILE', 'tlsClientCaFile', undefined],
    ['STATE_NAMESPACE', 'stateNamespace', 'pod-rebalancer'],
    ['NAMESPACES', 'namespaces', undefined],
    // kube-* and STATE_NAMESPACE are out of scope in the scope rules, not through this default.
    ['EXCLUDE_NAMESPACES', 'excludeNamespaces', new Set()],
    ['ALERT_PROVENANCE', 'alertProvenance', 'rules'],
    ['PROMETHEUS_MAX_RESPONSE', 'prometheusMaxResponseBytes', 8 * 1024 * 1024],
    ['POLICY_LIMITS', 'policyLimits', []],
    ['REQUIRE_OPT_IN', 'requireOptIn', false],
    ['ACTION_BUDGET', 'actionBudget', { limit: 20, windowMs: 3_600_000, text: '20/1h' }],
    ['SHUTDOWN_DELAY', 'shutdownDelayMs', 5000],
  ])('defaults %s (config.%s) to %p', (_name, key, expected) => {
    expect(config[key]).toEqual(expected);
  });

  it('keeps the required values as given', () => {
    expect(config.prometheusUrl).toBe('http://prometheus:9090');
    expect(config.webhookToken).toBe(TOKEN);
  });

  it('exports the threshold and pod-count defaults that loadConfig uses', () => {
    expect(DEFAULT_CPU_STDDEV_THRESHOLD).toBe(0.3);
    expect(DEFAULT_MIN_PODS).toBe(3);
    expect(config.threshold).toBe(DEFAULT_CPU_STDDEV_THRESHOLD);
    expect(config.minPods).toBe(DEFAULT_MIN_PODS);
  });

  it('returns a frozen configuration', () => {
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats an empty variable as unset, so its default applies (an empty MIN_POD_AGE must not count new pods)', () => {
    const withDefault = Object.entries(SETTINGS).filter(([, spec]) => 'default' in spec);
    const empty = Object.fromEntries(withDefault.map(([name]) => [name, '']));

    expect(withDefault.length).toBeGreaterThan(10);
    expect(loadConfig({ ...REQUIRED, ...empty })).toEqual(config);
  });
});

describe('loadConfig: valid values', () => {
  it.each<[string, string, keyof Config, unknown]>([
    ['PORT', '9443', 'port', 9443],
    ['PORT', '1', 'port', 1],
    ['PORT', '65535', 'port', 65535],
    ['PROMETHEUS_URL', 'https://prom.example:9090/', 'prometheusUrl', 'https://prom.example:9090'],
    ['PROMETHEUS_URL', 'http://thanos/query///', 'prometheusUrl', 'http://thanos/query'],
    ['PROMETHEUS_TIMEOUT', '1500ms', 'prometheusTimeoutMs', 1500],
    ['SHUTDOWN_DELAY', '0s', 'shutdownDelayMs', 0],
    ['SHUTDOWN_DELAY', '20s', 'shutdownDelayMs', 20_000],
    ['PROMETHEUS_TIMEOUT', '100ms', 'prometheusTimeoutMs', 100],
    [
      'PROMETHEUS_BEARER_TOKEN_FILE',
      '/var/run/secrets/prom',
      'prometheusBearerTokenFile',
      '/var/run/secrets/prom',
    ],
    ['ALERT_NAMES', 'A, B,,C ', 'alertNames', new Set(['A', 'B', 'C'])],
    ['CPU_STDDEV_THRESHOLD', '0.05', 'threshold', 0.05],
    ['CPU_STDDEV_THRESHOLD', '2', 'threshold', 2],
    ['METRICS_WINDOW', '2m', 'metricsWindowMs', 120_000],
    ['COOLDOWN', '1h', 'cooldownMs', 3_600_000],
    ['MAX_COOLDOWN', '48h', 'maxCooldownMs', 48 * 3_600_000],
    ['EFFECTIVE_REDUCTION', '0.5', 'effectiveReduction', 0.5],
    ['INEFFECTIVE_LIMIT', '5', 'ineffectiveLimit', 5],
    ['MIN_PODS', '2', 'minPods', 2],
    ['MIN_POD_AGE', '0s', 'minPodAgeMs', 0],
    ['MIN_POD_AGE', '1h30m', 'minPodAgeMs', 5_400_000],
    ['ACTION', 'delete', 'action', 'delete'],
    ['DRY_RUN', 'true', 'dryRun', true],
    ['LOG_LEVEL', 'debug', 'logLevel', 'debug'],
    ['TLS_CLIENT_CA_FILE', '/tls/ca.crt', 'tlsClientCaFile', '/tls/ca.crt'],
    ['STATE_NAMESPACE', 'ops', 'stateNamespace', 'ops'],
    ['NAMESPACES', 'payments, shop', 'namespaces', new Set(['payments', 'shop'])],
    [
      'EXCLUDE_NAMESPACES',
      'kube-system,monitoring',
      'excludeNamespaces',
      new Set(['kube-system', 'monitoring']),
    ],
    ['REQUIRE_OPT_IN', 'true', 'requireOptIn', true],
    ['ACTION_BUDGET', '5/30m', 'actionBudget', { limit: 5, windowMs: 1_800_000, text: '5/30m' }],
    ['ACTION_BUDGET', 'off', 'actionBudget', undefined],
  ])('reads %s=%p into config.%s', (name, value, key, expected) => {
    const tls = { TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key' };

    expect(loadConfig({ ...REQUIRED, ...tls, [name]: value })[key]).toEqual(expected);
  });

  it('parses ACTIVE_WINDOW into a window', () => {
    const { activeWindow } = loadConfig({
      ...REQUIRED,
      ACTIVE_WINDOW: 'Mon-Fri 09:00-17:00 Europe/Berlin',
    });

    expect(activeWindow).toMatchObject({
      startMinute: 540,
      endMinute: 1020,
      timeZone: 'Europe/Berlin',
    });
  });

  it('accepts WEBHOOK_TOKEN_FILE alone, without WEBHOOK_TOKEN', () => {
    const config = loadConfig({
      PROMETHEUS_URL: 'http://prometheus:9090',
      WEBHOOK_TOKEN_FILE: '/etc/pod-rebalancer/tokens',
    });

    expect(config.webhookTokenFile).toBe('/etc/pod-rebalancer/tokens');
    expect(config.webhookToken).toBeUndefined();
  });

  it('accepts TLS_CERT_FILE and TLS_KEY_FILE together', () => {
    expect(
      loadConfig({ ...REQUIRED, TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key' }),
    ).toMatchObject({ tlsCertFile: '/tls/tls.crt', tlsKeyFile: '/tls/tls.key' });
  });

  it('accepts MAX_COOLDOWN equal to COOLDOWN', () => {
    expect(loadConfig({ ...REQUIRED, COOLDOWN: '1h', MAX_COOLDOWN: '60m' }).maxCooldownMs).toBe(
      3_600_000,
    );
  });
});

describe('loadConfig: each invalid value is reported with the variable name and the value', () => {
  it.each([
    ['SHUTDOWN_DELAY', '21s'],
    ['SHUTDOWN_DELAY', 'soon'],
    ['PORT', '0'],
    ['PORT', '65536'],
    ['PORT', 'http'],
    ['PORT', '80.5'],
    ['PORT', '-1'],
    ['PORT', ' 8080'],
    ['PROMETHEUS_URL', 'prometheus:9090'],
    ['PROMETHEUS_URL', 'ftp://prometheus'],
    ['PROMETHEUS_URL', 'not a url'],
    ['PROMETHEUS_TIMEOUT', '10'],
    ['PROMETHEUS_TIMEOUT', '50ms'],
    ['PROMETHEUS_TIMEOUT', 'ten seconds'],
    ['ALERT_NAMES', ','],
    ['ALERT_NAMES', ' , '],
    ['CPU_STDDEV_THRESHOLD', '0'],
    ['CPU_STDDEV_THRESHOLD', '-0.3'],
    ['CPU_STDDEV_THRESHOLD', 'high'],
    ['CPU_STDDEV_THRESHOLD', 'Infinity'],
    ['CPU_STDDEV_THRESHOLD', 'NaN'],
    ['CPU_STDDEV_THRESHOLD', ' '],
    ['METRICS_WINDOW', '500ms'],
    ['METRICS_WINDOW', '5'],
    ['COOLDOWN', '0s'],
    ['COOLDOWN', 'soon'],
    ['MAX_COOLDOWN', 'forever'],
    ['MAX_COOLDOWN', '999ms'],
    ['EFFECTIVE_REDUCTION', '0'],
    ['EFFECTIVE_REDUCTION', '1'],
    ['EFFECTIVE_REDUCTION', '1.5'],
    ['EFFECTIVE_REDUCTION', 'half'],
    ['INEFFECTIVE_LIMIT', '0'],
    ['INEFFECTIVE_LIMIT', '101'],
    ['INEFFECTIVE_LIMIT', 'three'],
    ['MIN_PODS', '1'],
    ['MIN_PODS', '0'],
    ['MIN_PODS', 'three'],
    ['MIN_PODS', '100001'],
    ['MIN_POD_AGE', '10'],
    ['MIN_POD_AGE', '-1m'],
    ['ACTION', 'Evict'],
    ['ACTION', 'drain'],
    ['DRY_RUN', 'yes'],
    ['DRY_RUN', 'TRUE'],
    ['DRY_RUN', '1'],
    ['ACTIVE_WINDOW', 'weekdays'],
    ['ACTIVE_WINDOW', 'Mon-Fri 09:00-17:00 Nowhere/City'],
    ['ACTIVE_WINDOW', 'Mon-Fri 09:00-09:00 UTC'],
    ['LOG_LEVEL', 'verbose'],
    ['LOG_LEVEL', 'INFO'],
    ['STATE_NAMESPACE', 'Pod_Rebalancer'],
    ['NAMESPACES', 'payments,Shop'],
    ['EXCLUDE_NAMESPACES', ','],
    ['REQUIRE_OPT_IN', 'yes'],
    ['ACTION_BUDGET', '20'],
    ['ACTION_BUDGET', '0/1h'],
    ['ACTION_BUDGET', 'unlimited'],
  ])('%s=%p', (name, value) => {
    const problems = problemsOf({ ...REQUIRED, [name]: value });

    expect(problems).toEqual([expect.stringMatching(new RegExp(`^${name}: `))]);
    expect(problems[0]).toContain(`(got "${value}")`);
  });

  it('says what is expected, not only that the value is wrong', () => {
    expect(problemsOf({ ...REQUIRED, ACTION: 'drain' })).toEqual([
      'ACTION: expected one of evict, delete (got "drain")',
    ]);
  });

  it('throws a ConfigError whose message lists the problems', () => {
    expect(() => loadConfig({ ...REQUIRED, PORT: 'http' })).toThrow(ConfigError);
    expect(configErrorOf({ ...REQUIRED, PORT: 'http' })).toMatch(/^invalid configuration:\nPORT: /);
  });
});

describe('loadConfig: required variables', () => {
  it('requires PROMETHEUS_URL', () => {
    expect(problemsOf({ WEBHOOK_TOKEN: TOKEN })).toEqual([
      expect.stringMatching(/^PROMETHEUS_URL: required/),
    ]);
  });

  it('hides a password in a rejected PROMETHEUS_URL', () => {
    const [problem] = problemsOf({ ...REQUIRED, PROMETHEUS_URL: 'htp://user:s3cret@prom:9090' });

    expect(problem).toContain('htp://***@prom:9090');
    expect(problem).not.toContain('s3cret');
  });

  it('reports an invalid PROMETHEUS_URL once, not also as missing', () => {
    expect(problemsOf({ ...REQUIRED, PROMETHEUS_URL: 'ftp://x' })).toHaveLength(1);
  });

  it.each([
    ['neither WEBHOOK_TOKEN nor WEBHOOK_TOKEN_FILE is set', {}],
    ['WEBHOOK_TOKEN is empty', { WEBHOOK_TOKEN: '' }],
  ])('requires a webhook token when %s', (_case, env) => {
    expect(problemsOf({ PROMETHEUS_URL: 'http://prometheus:9090', ...env })).toEqual([
      expect.stringMatching(/^WEBHOOK_TOKEN: required.*WEBHOOK_TOKEN_FILE/),
    ]);
  });
});

describe('loadConfig: all problems at once', () => {
  it('reports several bad variables together, one line each', () => {
    const env = {
      WEBHOOK_TOKEN: TOKEN,
      PORT: 'http',
      MIN_PODS: '1',
      ACTION: 'drain',
      DRY_RUN: 'yes',
    };

    const problems = problemsOf(env);
    const lines = configErrorOf(env).split('\n').slice(1);

    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      ['ACTION', 'DRY_RUN', 'MIN_PODS', 'PORT', 'PROMETHEUS_URL'].sort(),
    );
    expect(lines).toEqual(problems);
  });

  it('reports a bad value and a failed cross check together', () => {
    const problems = problemsOf({ ...REQUIRED, PORT: 'http', TLS_KEY_FILE: '/tls/tls.key' });

    expect(problems).toEqual([
      expect.stringMatching(/^PORT: /),
      expect.stringMatching(/^TLS_CERT_FILE: /),
    ]);
  });
});

describe('loadConfig: secrets', () => {
  it('never echoes WEBHOOK_TOKEN, whatever else is wrong', () => {
    const env = {
      ...REQUIRED,
      PORT: TOKEN,
      MIN_PODS: 'x',
      TLS_CERT_FILE: '/tls/tls.crt',
      MAX_COOLDOWN: '1m',
    };

    const message = configErrorOf(env);

    expect(message.split('\n').length).toBeGreaterThan(3);
    // PORT's value is shown (it is not a secret); WEBHOOK_TOKEN's own value must not be.
    expect(
      message.replace(`PORT: expected a whole number from 1 to 65535 (got "${TOKEN}")`, ''),
    ).not.toContain(TOKEN);
  });

  it('does not put the token in the error problems either', () => {
    const problems = problemsOf({ WEBHOOK_TOKEN: TOKEN, MIN_PODS: 'x' });

    expect(problems.join('\n')).not.toContain(TOKEN);
  });
});

describe('loadConfig: cross checks', () => {
  it.each([
    ['TLS_CERT_FILE without TLS_KEY_FILE', { TLS_CERT_FILE: '/tls/tls.crt' }, ['TLS_CERT_FILE']],
    ['TLS_KEY_FILE without TLS_CERT_FILE', { TLS_KEY_FILE: '/tls/tls.key' }, ['TLS_CERT_FILE']],
    [
      'TLS_CLIENT_CA_FILE without a certificate',
      { TLS_CLIENT_CA_FILE: '/tls/ca.crt' },
      ['TLS_CLIENT_CA_FILE'],
    ],
    [
      'TLS_CLIENT_CA_FILE with a certificate but no key',
      { TLS_CLIENT_CA_FILE: '/tls/ca.crt', TLS_CERT_FILE: '/tls/tls.crt' },
      ['TLS_CERT_FILE'],
    ],
    [
      'TLS_CLIENT_CA_FILE with a key but no certificate',
      { TLS_CLIENT_CA_FILE: '/tls/ca.crt', TLS_KEY_FILE: '/tls/tls.key' },
      ['TLS_CERT_FILE', 'TLS_CLIENT_CA_FILE'],
    ],
    ['MAX_COOLDOWN below the default COOLDOWN', { MAX_COOLDOWN: '10m' }, ['MAX_COOLDOWN']],
    ['MAX_COOLDOWN below COOLDOWN', { COOLDOWN: '2h', MAX_COOLDOWN: '1h59m' }, ['MAX_COOLDOWN']],
  ])('rejects %s', (_case, env, names) => {
    const problems = problemsOf({ ...REQUIRED, ...env });

    expect(problems.map((p) => p.split(':')[0])).toEqual(names);
  });

  it('names COOLDOWN in the MAX_COOLDOWN problem', () => {
    expect(problemsOf({ ...REQUIRED, MAX_COOLDOWN: '10m' })).toEqual([
      'MAX_COOLDOWN: expected at least COOLDOWN',
    ]);
  });

  it('does not pile a cross check onto a value that is already invalid', () => {
    expect(problemsOf({ ...REQUIRED, COOLDOWN: 'soon', MAX_COOLDOWN: '1m' })).toEqual([
      expect.stringMatching(/^COOLDOWN: /),
    ]);
  });

  it('accepts a client CA with a certificate and key', () => {
    const tls = {
      TLS_CERT_FILE: '/tls/tls.crt',
      TLS_KEY_FILE: '/tls/tls.key',
      TLS_CLIENT_CA_FILE: '/tls/ca.crt',
    };

    expect(loadConfig({ ...REQUIRED, ...tls }).tlsClientCaFile).toBe('/tls/ca.crt');
  });
});
