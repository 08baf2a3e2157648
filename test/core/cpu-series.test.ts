import { describe, expect, it } from '@jest/globals';
import { clusterMatcher, cpuSeriesSelector, parseMatchers } from '../../src/core/cpu-series.js';

describe('the CPU series that count', () => {
  it('by default leaves out the pod-level cgroup and the pause container', () => {
    expect(cpuSeriesSelector()).toBe(
      'container_cpu_usage_seconds_total{container!="", container!="POD"}',
    );
  });

  it('when extra matchers and a cluster are configured, then every selector carries them after the scope', () => {
    const selector = cpuSeriesSelector(
      {
        extraMatchers: ['job="kubelet"', 'metrics_path="/metrics/cadvisor"'],
        clusterMatcher: 'cluster="eu-1"',
      },
      ['namespace="payments"'],
    );

    expect(selector).toBe(
      'container_cpu_usage_seconds_total{namespace="payments", container!="", container!="POD", job="kubelet", metrics_path="/metrics/cadvisor", cluster="eu-1"}',
    );
  });

  it.each([
    [
      'job="kubelet", metrics_path="/metrics/cadvisor"',
      ['job="kubelet"', 'metrics_path="/metrics/cadvisor"'],
    ],
    ['job = "kubelet"', ['job="kubelet"']],
    ['image!="",name=~"k8s_.*"', ['image!=""', 'name=~"k8s_.*"']],
    ['label="a,b"', ['label="a,b"']],
  ])('parses %s', (text, expected) => {
    expect(parseMatchers(text)).toEqual(expected);
  });

  it.each(['job=kubelet', '1job="x"', 'job=="x"', '{job="x"}'])(
    'when a matcher is not PromQL (%s), then it is refused naming it',
    (text) => {
      expect(() => parseMatchers(text)).toThrow(/expected label matchers/);
    },
  );

  it('when a cluster name has quotes, then the matcher escapes them', () => {
    expect(clusterMatcher('cluster', 'a"b')).toBe('cluster="a\\"b"');
  });
});
