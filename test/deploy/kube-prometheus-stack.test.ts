import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { AMTOOL, expectSuccess, runTool } from '../rules/tools.js';
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
const TOKEN_SECRET = 'pod-rebalancer-webhook-token';

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

  it('when used, then the PrometheusRule and the ServiceMonitor carry the release label the chart selects by', () => {
    expect(releaseLabels(overlay)).toEqual([
      ['PrometheusRule', 'kube-prometheus-stack'],
      ['ServiceMonitor', 'kube-prometheus-stack'],
    ]);
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
      ['ServiceMonitor', 'monitoring'],
    ]);
  });
});

describe('the user overlay example', () => {
  const text = readFileSync(join(repoRoot, USER_OVERLAY, 'kustomization.yaml'), 'utf8');
  const kustomization = parse(text) as { resources: string[]; components: string[] };

  it("references pod-rebalancer only as a remote base pinned with ?ref=, never this checkout's files", () => {
    const references = [...kustomization.resources, ...kustomization.components];

    expect(references.length).toBe(3);
    expect(references.filter((r) => !new RegExp(REMOTE_BASE.source).test(r))).toEqual([]);
    expect(new Set(references.map((r) => new URL(r).searchParams.get('ref'))).size).toBe(1);
  });

  it('renders the settings it merges into the generated ConfigMap', () => {
    const config = rebalancerConfig(renderKustomization(USER_OVERLAY));

    expect(config).toMatchObject({
      PROMETHEUS_URL: 'http://kube-prometheus-stack-prometheus.monitoring.svc:9090',
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

describe(VALUES, () => {
  const values = parse(readFileSync(join(repoRoot, VALUES), 'utf8')) as {
    alertmanager: {
      config: {
        receivers: {
          name: string;
          webhook_configs?: { http_config: { authorization: { credentials_file: string } } }[];
        }[];
      };
      alertmanagerSpec: { secrets: string[] };
    };
  };

  const withConfigFile = <T>(use: (file: string) => T): T => {
    const dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-values-'));
    try {
      const file = join(dir, 'alertmanager.yml');
      writeFileSync(file, stringify(values.alertmanager.config));
      return use(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('its alertmanager.config passes amtool check-config', () => {
    withConfigFile((file) => expectSuccess(runTool(AMTOOL, ['check-config', file])));
  });

  it('routes DeploymentCPUImbalance from any namespace to pod-rebalancer, and nothing else', () => {
    withConfigFile((file) => {
      const route = (labels: string[]) => {
        const run = runTool(AMTOOL, [
          'config',
          'routes',
          'test',
          `--config.file=${file}`,
          ...labels,
        ]);
        expectSuccess(run);
        return run.stdout.trim();
      };
      expect(route(['alertname=DeploymentCPUImbalance', 'namespace=payments'])).toBe(
        'pod-rebalancer',
      );
      expect(route(['alertname=KubePodCrashLooping', 'namespace=payments'])).toBe('null');
    });
  });

  it('reads the token from the Secret it lists, mounted where prometheus-operator puts it', () => {
    const webhook = values.alertmanager.config.receivers.find((r) => r.name === 'pod-rebalancer')
      ?.webhook_configs?.[0];

    expect(values.alertmanager.alertmanagerSpec.secrets).toEqual([TOKEN_SECRET]);
    expect(webhook?.http_config.authorization.credentials_file).toBe(
      `/etc/alertmanager/secrets/${TOKEN_SECRET}/token`,
    );
  });
});
