import { describe, expect, it } from '@jest/globals';
import { toActiveAlerts } from '../../src/adapters/rules.js';
import { gateProvenance, type ActiveAlerts, type RuleAlert } from '../../src/core/provenance.js';
import type { TargetAlert } from '../../src/core/targets.js';

const LABELS = { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' };
const POLICY = { pod_rebalancer_threshold: '0.3' };

function target(labels: Record<string, string>, annotations: Record<string, string>): TargetAlert {
  return {
    fingerprint: 'f1',
    alertname: 'DeploymentCPUImbalance',
    namespace: 'payments',
    deployment: 'api',
    labels,
    annotations,
  };
}

const active = (...alerts: RuleAlert[]): ActiveAlerts =>
  new Map([['DeploymentCPUImbalance', alerts]]);

describe('gateProvenance', () => {
  it.each<[string, ActiveAlerts, TargetAlert, string | undefined]>([
    [
      'the same labels and policy',
      active({ labels: LABELS, annotations: POLICY }),
      target(LABELS, POLICY),
      undefined,
    ],
    [
      'more labels on the alert (external labels) and other, non-policy annotations',
      active({ labels: LABELS, annotations: { ...POLICY, summary: 'rule text' } }),
      target({ ...LABELS, cluster: 'eu-1' }, { ...POLICY, summary: 'Alertmanager text' }),
      undefined,
    ],
    [
      'no rule of that name',
      new Map(),
      target(LABELS, POLICY),
      'no alerting rule DeploymentCPUImbalance has an active alert',
    ],
    [
      'a label of the rule missing from the alert',
      active({ labels: { ...LABELS, severity: 'warning' }, annotations: POLICY }),
      target(LABELS, POLICY),
      'no active alert of rule DeploymentCPUImbalance has these labels',
    ],
    [
      'another threshold',
      active({ labels: LABELS, annotations: POLICY }),
      target(LABELS, { pod_rebalancer_threshold: '0.000001' }),
      'other pod_rebalancer_* annotations',
    ],
    [
      'a policy annotation the rule does not carry',
      active({ labels: LABELS, annotations: POLICY }),
      target(LABELS, { ...POLICY, pod_rebalancer_min_improvement: '0%' }),
      'other pod_rebalancer_* annotations',
    ],
    [
      'a policy annotation the alert dropped',
      active({ labels: LABELS, annotations: { ...POLICY, pod_rebalancer_guard: 'up == 0' } }),
      target(LABELS, POLICY),
      'other pod_rebalancer_* annotations',
    ],
  ])('when %s, then %p', (_case, rules, alert, detail) => {
    const gate = gateProvenance(alert, rules);

    if (detail === undefined) expect(gate).toBeUndefined();
    else
      expect(gate).toEqual({
        reason: 'unconfirmed-alert',
        detail: expect.stringContaining(detail),
      });
  });
});

describe('toActiveAlerts (the rules answer at the boundary)', () => {
  const rule = (alerts: unknown[], overrides: Record<string, unknown> = {}) => ({
    type: 'alerting',
    name: 'DeploymentCPUImbalance',
    alerts,
    ...overrides,
  });

  it('keeps the pending and firing alerts of the named alerting rules, and nothing else', () => {
    const groups = [
      {
        rules: [
          rule([
            { labels: LABELS, annotations: POLICY, state: 'firing' },
            { labels: { ...LABELS, deployment: 'web' }, annotations: {}, state: 'pending' },
            { labels: { ...LABELS, deployment: 'old' }, annotations: {}, state: 'inactive' },
            { labels: { ...LABELS, deployment: 'bad' }, annotations: { n: 1 }, state: 'firing' },
          ]),
          rule([{ labels: LABELS, annotations: {}, state: 'firing' }], { name: 'Other' }),
          { type: 'recording', name: 'DeploymentCPUImbalance' },
        ],
      },
    ];

    const alerts = toActiveAlerts(groups, ['DeploymentCPUImbalance']);

    expect([...alerts.keys()]).toEqual(['DeploymentCPUImbalance']);
    expect(alerts.get('DeploymentCPUImbalance')!.map((a) => a.labels.deployment)).toEqual([
      'api',
      'web',
    ]);
  });

  it('refuses an answer without groups', () => {
    expect(() => toActiveAlerts(undefined, ['DeploymentCPUImbalance'])).toThrow(/data\.groups/);
  });
});
