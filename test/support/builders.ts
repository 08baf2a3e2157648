/**
 * Test builders: a realistic default for each input of pod-rebalancer, changed only where a test
 * says so (`buildPod({ ready: false })`). Defaults are fixed values, never the current time, so
 * that every test is reproducible.
 */
import { createHash } from 'node:crypto';
import type { Alert } from '../../src/core/targets.js';
import type { CpuSamples, DeploymentFacts, PodFacts } from '../../src/core/types.js';
import type { WebhookPayload } from '../../src/http/schema.js';

/** When a built pod started unless told otherwise: long before any `now` the tests use. */
export const POD_STARTED_AT = new Date('2026-11-28T00:00:00.000Z');

/** Alertmanager writes this `endsAt` on a firing alert. */
export const FIRING_ENDS_AT = '0001-01-01T00:00:00Z';

/**
 * A Running, Ready, non-terminating pod that started at POD_STARTED_AT. Its uid follows its
 * name (`uid-<name>`) unless given, so two pods built with different names never share one.
 */
export function buildPod(overrides: Partial<PodFacts> = {}): PodFacts {
  const name = overrides.name ?? 'api-7d9f8b6c5-abcde';
  return {
    name,
    uid: `uid-${name}`,
    phase: 'Running',
    ready: true,
    terminating: false,
    startedAt: POD_STARTED_AT,
    ...overrides,
  };
}

/** The Deployment payments/api: present, not opted out, no rollout in progress. */
export function buildDeploymentFacts(overrides: Partial<DeploymentFacts> = {}): DeploymentFacts {
  const namespace = overrides.namespace ?? 'payments';
  const name = overrides.name ?? 'api';
  return {
    namespace,
    name,
    uid: `uid-${namespace}-${name}`,
    optedOut: false,
    rolloutInProgress: false,
    selector: { matchLabels: { app: name } },
    ...overrides,
  };
}

/** One alert as Alertmanager 0.25 sends it in a version 4 webhook payload. */
export interface AlertmanagerAlert extends Alert {
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}

/**
 * Overrides for buildAlert. `labels` are merged into the default labels; a label set to
 * undefined is removed (`buildAlert({ labels: { deployment: undefined } })`).
 */
export type AlertOverrides = Partial<Omit<AlertmanagerAlert, 'labels'>> & {
  labels?: Record<string, string | undefined>;
};

/**
 * A firing DeploymentCPUImbalance alert for payments/api, shaped like the captured fixtures.
 * The fingerprint is derived from the labels (as Alertmanager's is): the same labels give the
 * same fingerprint, different labels a different one.
 */
export function buildAlert(overrides: AlertOverrides = {}): AlertmanagerAlert {
  const { labels: labelOverrides, ...rest } = overrides;
  const labels = definedOnly({
    alertname: 'DeploymentCPUImbalance',
    namespace: 'payments',
    deployment: 'api',
    severity: 'warning',
    ...labelOverrides,
  });
  const status = rest.status ?? 'firing';
  const startsAt = rest.startsAt ?? '2026-11-28T16:44:56.709Z';
  return {
    status,
    labels,
    annotations: { summary: `CPU imbalance in ${labels.namespace}/${labels.deployment}` },
    startsAt,
    endsAt: status === 'firing' ? FIRING_ENDS_AT : later(startsAt, 34_000),
    generatorURL:
      'http://prometheus.monitoring.svc:9090/graph?g0.expr=stddev+by+%28namespace%2C+deployment%29+%28namespace_deployment_pod%3Acpu_usage%3Arate%29+%3E+0.3&g0.tab=1',
    fingerprint: fingerprintOf(labels),
    ...rest,
  };
}

/** A version 4 webhook payload with every field Alertmanager 0.25 sends. */
export interface AlertmanagerPayload extends WebhookPayload {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: AlertmanagerAlert[];
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  groupKey: string;
  truncatedAlerts: number;
}

/**
 * An Alertmanager v4 payload; by default one firing alert from buildAlert(). As Alertmanager
 * does, the envelope `status` is `firing` if any alert fires, and `commonLabels` /
 * `commonAnnotations` are what all alerts share, unless overridden.
 */
export function buildPayload(overrides: Partial<AlertmanagerPayload> = {}): AlertmanagerPayload {
  const alerts = overrides.alerts ?? [buildAlert()];
  const groupLabels = overrides.groupLabels ?? { alertname: 'DeploymentCPUImbalance' };
  return {
    receiver: 'pod-rebalancer',
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts,
    groupLabels,
    commonLabels: shared(alerts.map((a) => a.labels)),
    commonAnnotations: shared(alerts.map((a) => a.annotations)),
    externalURL: 'http://alertmanager.monitoring.svc:9093',
    version: '4',
    groupKey: `{}/{alertname="DeploymentCPUImbalance"}:{${Object.entries(groupLabels)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(', ')}}`,
    truncatedAlerts: 0,
    ...overrides,
  };
}

/** Per-pod CPU samples from a plain record: `samplesOf({ 'api-a': 0.4 })`. */
export function samplesOf(record: Record<string, number>): Map<string, number> & CpuSamples {
  return new Map(Object.entries(record));
}

function definedOnly(record: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function fingerprintOf(labels: Record<string, string>): string {
  const canonical = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

function later(iso: string, ms: number): string {
  return new Date(new Date(iso).getTime() + ms).toISOString();
}

/** The entries every record has with the same value. */
function shared(records: Record<string, string>[]): Record<string, string> {
  const [first, ...others] = records;
  if (!first) return {};
  return Object.fromEntries(
    Object.entries(first).filter(([k, v]) => others.every((r) => r[k] === v)),
  );
}
