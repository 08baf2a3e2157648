import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { AMTOOL, expectSuccess, readYaml, runTool } from '../rules/tools.js';
import {
  ofKind,
  REMOTE_BASE,
  rebalancerConfig,
  rebalancerConfigMap,
  rebalancerDeployment,
  renderKustomization,
  repoRoot,
  USER_OVERLAY,
  type KubeObject,
} from './render.js';

const VALUES = 'deploy/alertmanager/kube-prometheus-stack-values.yaml';
const CHART_DEFAULTS = 'test/fixtures/kube-prometheus-stack/default-values.yaml';
const TOKEN_SECRET = 'pod-rebalancer-webhook-token';

/** Runs `use` with an Alertmanager config written to a temporary alertmanager.yml. */
function withConfigFile<T>(config: unknown, use: (file: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-values-'));
  try {
    const file = join(dir, 'alertmanager.yml');
    writeFileSync(file, stringify(config));
    return use(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const releaseLabels = (objects: KubeObject[]) =>
  objects
    .filter((o) => o.kind === 'PrometheusRule' || o.kind === 'ServiceMonitor')
    .map((o) => [o.kind, o.metadata.labels?.release]);

/** Where the Deployment reads its environment from. */
const configMapRefs = (objects: KubeObject[]) =>
  (rebalancerDeployment(objects).spec?.template.spec?.containers ?? []).flatMap((c) =>
    (c.envFrom ?? []).map((e) => e.configMapRef?.name),
  );

describe('the kube-prometheus-stack component', () => {
  let base: KubeObject[];
  let overlay: KubeObject[];
  beforeAll(() => {
    base = renderKustomization('deploy');
    overlay = renderKustomization(USER_OVERLAY);
  });

  it("when used, then the PrometheusRules, the user's own included, and the ServiceMonitor carry the release label the chart selects by", () => {
    expect(releaseLabels(overlay)).toEqual([
      ['PrometheusRule', 'kube-prometheus-stack'],
      ['PrometheusRule', 'kube-prometheus-stack'],
      ['ServiceMonitor', 'kube-prometheus-stack'],
    ]);
  });

  it('when a PrometheusRule of the overlay has no labels: at all, then it gets the release label too (no JSON-patch error)', () => {
    const own = readFileSync(join(repoRoot, USER_OVERLAY, 'checkout-order-consumer.yaml'), 'utf8');
    const rule = overlay.find((o) => o.metadata.name === 'pod-rebalancer-checkout-order-consumer');

    expect((parse(own) as KubeObject).metadata.labels).toBeUndefined();
    expect(rule?.metadata.labels).toEqual({ release: 'kube-prometheus-stack' });
  });

  it('when not used, then nothing carries a release label (the component is what adds it)', () => {
    expect(releaseLabels(base)).toEqual([
      ['PrometheusRule', undefined],
      ['ServiceMonitor', undefined],
    ]);
  });

  it('when the release has another name, then the patch shown in the example overlay sets it', () => {
    const withName = renderKustomization(USER_OVERLAY, (text) =>
      text
        .replace(/^# patches:/m, 'patches:')
        .replace(/^# {3}- target/gm, '  - target')
        .replace(/^# {5}patch/gm, '    patch')
        .replace(/"value": "prometheus"/g, '"value": "monitoring"'),
    );

    expect(releaseLabels(withName)).toEqual([
      ['PrometheusRule', 'monitoring'],
      ['PrometheusRule', 'monitoring'],
      ['ServiceMonitor', 'monitoring'],
    ]);
  });
});

describe('the user overlay example', () => {
  const text = readFileSync(join(repoRoot, USER_OVERLAY, 'kustomization.yaml'), 'utf8');
  const kustomization = parse(text) as { resources: string[]; components: string[] };

  it("references pod-rebalancer only as a remote base pinned with one ?ref=, never this checkout's files; its own files are beside it", () => {
    const references = [...kustomization.resources, ...kustomization.components];
    const remote = references.filter((r) => new RegExp(REMOTE_BASE.source).test(r));
    const local = references.filter((r) => !remote.includes(r));

    expect(remote.length).toBe(3);
    expect(new Set(remote.map((r) => new URL(r).searchParams.get('ref'))).size).toBe(1);
    expect(local).toEqual(['checkout-order-consumer.yaml']);
  });

  it('renders the settings it merges into the generated ConfigMap', () => {
    const config = rebalancerConfig(renderKustomization(USER_OVERLAY));

    expect(config).toMatchObject({
      PROMETHEUS_URL: 'http://prometheus-operated.monitoring.svc:9090',
      DRY_RUN: 'true',
      COOLDOWN: '15m',
    });
  });

  it('when a configuration value changes, then the ConfigMap gets a new name and the Deployment points at it, so the pods roll', () => {
    const before = renderKustomization(USER_OVERLAY);
    const after = renderKustomization(USER_OVERLAY, (t) =>
      t.replace('      - DRY_RUN=true', '      - DRY_RUN=true\n      - COOLDOWN=30m'),
    );

    const [oldName, newName] = [before, after].map((o) => rebalancerConfigMap(o).metadata?.name);
    expect(rebalancerConfig(after).COOLDOWN).toBe('30m');
    expect(newName).not.toBe(oldName);
    expect(configMapRefs(before)).toEqual([oldName]);
    expect(configMapRefs(after)).toEqual([newName]);
    expect(ofKind<IDeployment>(after, 'Deployment')).toHaveLength(1);
  });
});

/** Helm's merge of values files: maps merged key by key, anything else (lists too) replaced. */
export function helmMerge(base: unknown, override: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(base) || !isMap(override)) return override === undefined ? base : override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) merged[key] = helmMerge(base[key], value);
  return merged;
}

interface AlertmanagerValues {
  alertmanager: {
    config: {
      route: { receiver: string; routes: { receiver: string; matchers?: string[] }[] };
      receivers: {
        name: string;
        webhook_configs?: { http_config: { authorization: { credentials_file: string } } }[];
      }[];
    };
    alertmanagerSpec: { secrets: string[] };
  };
}

describe(`${VALUES}, merged into the chart's defaults as Helm merges values`, () => {
  const defaults = readYaml<AlertmanagerValues>(CHART_DEFAULTS);
  const fragment = readYaml<AlertmanagerValues>(VALUES);
  const merged = helmMerge(defaults, fragment) as AlertmanagerValues;

  /** The receiver amtool says the merged config routes an alert with these labels to. */
  const routedTo = (labels: string[]): string =>
    withConfigFile(merged.alertmanager.config, (file) => {
      const run = runTool(AMTOOL, ['config', 'routes', 'test', `--config.file=${file}`, ...labels]);
      expectSuccess(run);
      return run.stdout.trim();
    });

  it('merges maps and replaces lists (the merge the test relies on)', () => {
    expect(helmMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } })).toEqual({
      a: { b: 1, c: [3] },
    });
  });

  it('passes amtool check-config', () => {
    withConfigFile(merged.alertmanager.config, (file) =>
      expectSuccess(runTool(AMTOOL, ['check-config', file])),
    );
  });

  it('keeps the root receiver and every default route and receiver of the chart', () => {
    expect(merged.alertmanager.config.route.receiver).toBe(
      defaults.alertmanager.config.route.receiver,
    );
    expect(merged.alertmanager.config.route.routes).toEqual(
      expect.arrayContaining(defaults.alertmanager.config.route.routes),
    );
    expect(merged.alertmanager.config.receivers).toEqual(
      expect.arrayContaining(defaults.alertmanager.config.receivers),
    );
  });

  it("puts pod-rebalancer's route first, continue: false, matching its alert only", () => {
    expect(merged.alertmanager.config.route.routes[0]).toMatchObject({
      receiver: 'pod-rebalancer',
      matchers: ['alertname="DeploymentCPUImbalance"'],
      continue: false,
    });
  });

  it("routes the rule's alert, from any namespace, to the webhook and every other alert where the chart sends it", () => {
    expect(
      routedTo(['alertname=DeploymentCPUImbalance', 'namespace=payments', 'severity=warning']),
    ).toBe('pod-rebalancer');
    expect(
      routedTo(['alertname=KubePodCrashLooping', 'namespace=payments', 'severity=critical']),
    ).toBe('null');
    expect(routedTo(['alertname=Watchdog', 'severity=none'])).toBe('null');
    expect(routedTo(['alertname=PodRebalancerDown', 'namespace=pod-rebalancer'])).toBe('null');
  });

  it('lists the token Secret for prometheus-operator to mount, where the receiver reads it', () => {
    const webhook = merged.alertmanager.config.receivers.find((r) => r.name === 'pod-rebalancer')
      ?.webhook_configs?.[0];

    expect(merged.alertmanager.alertmanagerSpec.secrets).toEqual([TOKEN_SECRET]);
    expect(webhook?.http_config.authorization.credentials_file).toBe(
      `/etc/alertmanager/secrets/${TOKEN_SECRET}/token`,
    );
  });
});
