import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { targetKey, targetsFromAlerts } from '../../src/core/targets.js';
import { buildAlert, buildPayload, type AlertmanagerPayload } from '../support/builders.js';

const FIXTURES = new URL('../fixtures/alertmanager-0.25/', import.meta.url);
const OURS = new Set(['DeploymentCPUImbalance']);

/** A payload captured from a real Alertmanager 0.25. */
function fixture(name: string): AlertmanagerPayload {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as AlertmanagerPayload;
}

/** The outcome in a compact form: target keys, duplicate keys, dismissed "key reason". */
function summary(payload: { alerts: AlertmanagerPayload['alerts'] }, names = OURS) {
  const { targets, duplicates, dismissed } = targetsFromAlerts(payload.alerts, names);
  return {
    targets: targets.map(targetKey),
    duplicates: duplicates.map(targetKey),
    dismissed: dismissed.map((d) => `${d.namespace}/${d.deployment} ${d.reason}`),
  };
}

describe('targetsFromAlerts with real Alertmanager 0.25 payloads', () => {
  it.each([
    ['firing-single.json', ['payments/api'], []],
    ['firing-two-deployments.json', ['payments/api', 'shop/web'], []],
    ['mixed-firing-and-resolved.json', ['payments/api'], ['shop/web resolved']],
    ['resolved.json', [], ['shop/web resolved']],
    ['truncated.json', ['payments/api'], []],
  ])('%s: examines %j, acknowledges %j', (file, targets, dismissed) => {
    expect(summary(fixture(file))).toEqual({ targets, duplicates: [], dismissed });
  });

  it('carries the fingerprint, alertname, startsAt, labels and annotations of the alert into the target', () => {
    const { targets } = targetsFromAlerts(fixture('firing-single.json').alerts, OURS);

    expect(targets).toEqual([
      {
        namespace: 'payments',
        deployment: 'api',
        fingerprint: 'd9600f0b57164017',
        alertname: 'DeploymentCPUImbalance',
        startsAt: '2026-11-28T16:44:56.709Z',
        labels: {
          alertname: 'DeploymentCPUImbalance',
          namespace: 'payments',
          deployment: 'api',
          severity: 'warning',
        },
        annotations: { summary: 'CPU imbalance in payments/api' },
      },
    ]);
  });

  it('gives an alert without annotations an empty set, so the policy falls back to the configuration', () => {
    const alert = {
      status: 'firing' as const,
      labels: { alertname: 'DeploymentCPUImbalance', namespace: 'payments', deployment: 'api' },
      fingerprint: 'f1',
    };

    expect(targetsFromAlerts([alert], OURS).targets[0]?.annotations).toEqual({});
  });

  it('acknowledges a resolved alert with its fingerprint and Deployment, so the report can name it', () => {
    const { dismissed } = targetsFromAlerts(fixture('resolved.json').alerts, OURS);

    expect(dismissed).toEqual([
      {
        fingerprint: '7873796f262841b2',
        alertname: 'DeploymentCPUImbalance',
        namespace: 'shop',
        deployment: 'web',
        reason: 'resolved',
        detail: expect.any(String),
      },
    ]);
  });

  it('dismisses every alert of a real payload as unknown-alert when its alertname is not ours', () => {
    const result = summary(fixture('firing-two-deployments.json'), new Set(['SomethingElse']));

    expect(result.targets).toEqual([]);
    expect(result.dismissed).toEqual(['payments/api unknown-alert', 'shop/web unknown-alert']);
  });

  it('builds payloads with the same fields a real Alertmanager 0.25 sends', () => {
    const real = fixture('firing-single.json');
    const built = buildPayload();

    expect(Object.keys(built).sort()).toEqual(Object.keys(real).sort());
    expect(Object.keys(built.alerts[0]!).sort()).toEqual(Object.keys(real.alerts[0]!).sort());
  });
});

describe('targetsFromAlerts: alerts acknowledged without looking at a Deployment', () => {
  it.each([
    ['resolved', 'the alert is resolved', buildAlert({ status: 'resolved' })],
    [
      'resolved',
      'a resolved alert that is also not ours (resolved is said first)',
      buildAlert({ status: 'resolved', labels: { alertname: 'KubePodCrashLooping' } }),
    ],
    [
      'unknown-alert',
      'the alertname is not ours',
      buildAlert({ labels: { alertname: 'KubePodCrashLooping' } }),
    ],
    [
      'unknown-alert',
      'the alert has no alertname',
      buildAlert({ labels: { alertname: undefined } }),
    ],
    [
      'unknown-alert',
      'the alertname differs in case',
      buildAlert({ labels: { alertname: 'deploymentcpuimbalance' } }),
    ],
    [
      'missing-labels',
      'there is no namespace label',
      buildAlert({ labels: { namespace: undefined } }),
    ],
    [
      'missing-labels',
      'there is no deployment label',
      buildAlert({ labels: { deployment: undefined } }),
    ],
    [
      'missing-labels',
      'there are neither',
      buildAlert({ labels: { namespace: undefined, deployment: undefined } }),
    ],
    ['missing-labels', 'the namespace label is empty', buildAlert({ labels: { namespace: '' } })],
    ['missing-labels', 'the deployment label is empty', buildAlert({ labels: { deployment: '' } })],
    [
      'missing-labels',
      'the namespace has capitals',
      buildAlert({ labels: { namespace: 'Payments' } }),
    ],
    [
      'missing-labels',
      'the namespace has a dot',
      buildAlert({ labels: { namespace: 'pay.ments' } }),
    ],
    [
      'missing-labels',
      'the namespace is 64 characters',
      buildAlert({ labels: { namespace: 'n'.repeat(64) } }),
    ],
    [
      'missing-labels',
      'the deployment has an underscore',
      buildAlert({ labels: { deployment: 'api_v2' } }),
    ],
    [
      'missing-labels',
      'the deployment has a slash (path traversal)',
      buildAlert({ labels: { deployment: 'api/../x' } }),
    ],
    [
      'missing-labels',
      'the deployment has a PromQL quote',
      buildAlert({ labels: { deployment: 'api",x="' } }),
    ],
    [
      'missing-labels',
      'the deployment starts with a dash',
      buildAlert({ labels: { deployment: '-api' } }),
    ],
    [
      'missing-labels',
      'the deployment ends with a dash',
      buildAlert({ labels: { deployment: 'api-' } }),
    ],
    [
      'missing-labels',
      'the deployment has an empty dot segment',
      buildAlert({ labels: { deployment: 'api..v2' } }),
    ],
    [
      'missing-labels',
      'the deployment is 254 characters',
      buildAlert({ labels: { deployment: 'd'.repeat(254) } }),
    ],
  ])('dismisses as %s when %s', (reason, _case, alert) => {
    const result = targetsFromAlerts([alert], OURS);

    expect(result.targets).toEqual([]);
    expect(result.duplicates).toEqual([]);
    expect(result.dismissed).toEqual([
      expect.objectContaining({
        fingerprint: alert.fingerprint,
        reason,
        detail: expect.any(String),
      }),
    ]);
  });

  it('reports an empty alertname for an alert that has none', () => {
    const alert = buildAlert({ labels: { alertname: undefined } });

    expect(targetsFromAlerts([alert], OURS).dismissed[0]?.alertname).toBe('');
  });

  it.each([
    ['a 63-character namespace', { namespace: 'n'.repeat(63) }],
    ['a one-character namespace', { namespace: 'n' }],
    ['a 253-character deployment', { deployment: `${'d'.repeat(126)}.${'d'.repeat(126)}` }],
    ['a dotted deployment name', { deployment: 'api.v2' }],
    ['digits and dashes', { namespace: 'team-42', deployment: '0-api-1' }],
  ])('accepts %s as a Kubernetes name', (_case, labels) => {
    const result = targetsFromAlerts([buildAlert({ labels })], OURS);

    expect(result.targets).toHaveLength(1);
    expect(result.dismissed).toEqual([]);
  });

  it('acts on any of several ALERT_NAMES', () => {
    const alerts = [
      buildAlert({ labels: { alertname: 'A', deployment: 'one' } }),
      buildAlert({ labels: { alertname: 'B', deployment: 'two' } }),
      buildAlert({ labels: { alertname: 'C', deployment: 'three' } }),
    ];

    expect(summary({ alerts }, new Set(['A', 'B']))).toEqual({
      targets: ['payments/one', 'payments/two'],
      duplicates: [],
      dismissed: ['payments/three unknown-alert'],
    });
  });
});

describe('targetsFromAlerts: one Deployment named several times in one payload is handled once', () => {
  it('examines the first alert and reports the others as duplicates, in payload order', () => {
    const first = buildAlert({ labels: { severity: 'warning' } });
    const second = buildAlert({ labels: { severity: 'critical' } });
    const web = buildAlert({ labels: { namespace: 'shop', deployment: 'web' } });

    const result = targetsFromAlerts([first, web, second], OURS);

    expect(result.targets.map((t) => t.fingerprint)).toEqual([first.fingerprint, web.fingerprint]);
    expect(result.duplicates.map((t) => t.fingerprint)).toEqual([second.fingerprint]);
    expect(result.dismissed).toEqual([]);
  });

  it('reports a third alert for the same Deployment as a duplicate too', () => {
    const alerts = ['a', 'b', 'c'].map((tag) => buildAlert({ labels: { tag } }));

    expect(summary({ alerts })).toEqual({
      targets: ['payments/api'],
      duplicates: ['payments/api', 'payments/api'],
      dismissed: [],
    });
  });

  it('treats the same Deployment name in two namespaces as two Deployments', () => {
    const alerts = [
      buildAlert({ labels: { namespace: 'payments' } }),
      buildAlert({ labels: { namespace: 'staging' } }),
    ];

    expect(summary({ alerts }).targets).toEqual(['payments/api', 'staging/api']);
  });

  it.each([
    ['resolved', buildAlert({ status: 'resolved', labels: { severity: 'critical' } })],
    ['not ours', buildAlert({ labels: { alertname: 'Other' } })],
  ])(
    'examines a firing alert even when an earlier alert for its Deployment was %s',
    (_case, earlier) => {
      const firing = buildAlert();

      const result = targetsFromAlerts([earlier, firing], OURS);

      expect(result.targets.map((t) => t.fingerprint)).toEqual([firing.fingerprint]);
      expect(result.duplicates).toEqual([]);
      expect(result.dismissed).toHaveLength(1);
    },
  );

  it('treats the same alert sent twice in one payload as a duplicate', () => {
    const alert = buildAlert();

    expect(summary({ alerts: [alert, alert] })).toEqual({
      targets: ['payments/api'],
      duplicates: ['payments/api'],
      dismissed: [],
    });
  });
});
