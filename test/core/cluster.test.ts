import { describe, expect, it } from '@jest/globals';
import { splitByCluster } from '../../src/core/cluster.js';
import type { Alert } from '../../src/core/targets.js';

function alert(labels: Record<string, string>, fingerprint = 'f1'): Alert {
  return {
    status: 'firing',
    fingerprint,
    labels: {
      alertname: 'DeploymentCPUImbalance',
      namespace: 'payments',
      deployment: 'api',
      ...labels,
    },
  };
}

describe('splitByCluster (CLUSTER / CLUSTER_LABEL)', () => {
  it.each([
    ['CLUSTER is unset: every alert is ours', undefined, 'cluster', { cluster: 'eu-2' }, true],
    ['the alert names this cluster', 'eu-1', 'cluster', { cluster: 'eu-1' }, true],
    ['the alert names another cluster', 'eu-1', 'cluster', { cluster: 'eu-2' }, false],
    ['the alert carries no cluster label', 'eu-1', 'cluster', {}, false],
    ['the alert carries no cluster label and CLUSTER is unset', undefined, 'cluster', {}, true],
    [
      'the cluster is named by CLUSTER_LABEL',
      'eu-1',
      'k8s_cluster',
      { k8s_cluster: 'us-1', cluster: 'eu-1' },
      false,
    ],
  ])('when %s, then ours is %s', (_case, name, label, labels, ours) => {
    const split = splitByCluster([alert(labels)], { name, label });

    expect(split.ours.length === 1).toBe(ours);
    expect(split.others.length === 1).toBe(!ours);
  });

  it('when an alert is for another cluster, then it is skipped other-cluster, naming both clusters', () => {
    const { others } = splitByCluster([alert({ cluster: 'eu-2' })], {
      name: 'eu-1',
      label: 'cluster',
    });

    expect(others).toEqual([
      {
        fingerprint: 'f1',
        alertname: 'DeploymentCPUImbalance',
        namespace: 'payments',
        deployment: 'api',
        reason: 'other-cluster',
        detail: 'the alert\'s cluster label is "eu-2"; this is cluster "eu-1"',
      },
    ]);
  });
});
