import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { SETTINGS, loadConfig } from '../../src/config.js';
import {
  KUSTOMIZATIONS,
  containersOf,
  ofKind,
  podTemplates,
  rebalancerConfig,
  rebalancerDeployment,
  renderKustomization,
  type KubeObject,
} from './render.js';

/**
 * The recording rule's rate() window, which the service's verification query must share. The
 * threshold and the minimum pods are no longer tied: every bundled alert carries its own in
 * annotations, and CPU_STDDEV_THRESHOLD / MIN_PODS only fill in for alerts that carry none.
 */
const TIED_TO_THE_RULE = ['METRICS_WINDOW'];

/** The environment Kubernetes gives the service container: envFrom ConfigMaps, then env. */
function containerEnvironment(objects: KubeObject[]): Record<string, string> {
  const container = rebalancerDeployment(objects).spec?.template.spec?.containers[0];
  const fromConfigMaps = (container?.envFrom ?? []).map((source) => {
    const name = source.configMapRef?.name;
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
    if (configMap === undefined) throw new Error(`envFrom names a missing ConfigMap ${name}`);
    return (configMap as { data?: Record<string, string> }).data ?? {};
  });
  const literals = (container?.env ?? [])
    .filter((variable) => variable.value !== undefined)
    .map((variable) => ({ [variable.name]: variable.value as string }));
  return Object.assign({}, ...fromConfigMaps, ...literals) as Record<string, string>;
}

/** Every variable name the manifests set: the ConfigMaps the container reads, and env names. */
function variablesSet(objects: KubeObject[]): string[] {
  const read = rebalancerDeployment(objects).spec?.template.spec?.containers.flatMap((c) =>
    (c.envFrom ?? []).map((source) => source.configMapRef?.name),
  );
  const configKeys = ofKind<{ metadata: { name: string }; data?: Record<string, string> }>(
    objects,
    'ConfigMap',
  )
    .filter((configMap) => read?.includes(configMap.metadata.name))
    .flatMap((configMap) => Object.keys(configMap.data ?? {}));
  const envNames = podTemplates(objects).flatMap(({ template }) =>
    containersOf(template).flatMap((container) => (container.env ?? []).map((e) => e.name)),
  );
  return [...configKeys, ...envNames];
}

describe.each(KUSTOMIZATIONS)('configuration rendered by %s', (dir) => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });

  it("passes the service's own configuration check", () => {
    expect(() => loadConfig(containerEnvironment(objects))).not.toThrow();
  });

  it('sets only variables the service reads', () => {
    const known = Object.keys(SETTINGS);
    expect(variablesSet(objects).filter((name) => !known.includes(name))).toEqual([]);
  });

  it('leaves METRICS_WINDOW, tied to the recording rule, to its default', () => {
    expect(variablesSet(objects).filter((name) => TIED_TO_THE_RULE.includes(name))).toEqual([]);
  });

  it('ships alerts that carry their whole policy, so the configured threshold never decides for them', () => {
    const alerts = ofKind<IPrometheusRule>(objects, 'PrometheusRule').flatMap((rule) =>
      (rule.spec.groups ?? []).flatMap((group) =>
        (group.rules ?? []).filter((r) => r.alert === 'DeploymentCPUImbalance'),
      ),
    );
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) {
      expect(alert.annotations).toMatchObject({
        pod_rebalancer_threshold: expect.any(String),
        pod_rebalancer_measure: expect.any(String),
        pod_rebalancer_min_pods: expect.any(String),
      });
    }
  });

  it('acts only on alerts the bundled PrometheusRule fires', () => {
    const ruleAlerts = ofKind<IPrometheusRule>(objects, 'PrometheusRule').flatMap((rule) =>
      (rule.spec.groups ?? []).flatMap((group) =>
        (group.rules ?? []).flatMap((r) => r.alert ?? []),
      ),
    );
    const alertNames = loadConfig(containerEnvironment(objects)).alertNames;
    expect([...alertNames].filter((name) => !ruleAlerts.includes(name))).toEqual([]);
  });
});

describe('dry-run burn-in', () => {
  let base: KubeObject[];
  let dryRun: KubeObject[];
  beforeAll(() => {
    base = renderKustomization('deploy');
    dryRun = renderKustomization('deploy/overlays/dry-run');
  });

  it('the dry-run overlay makes the service remove nothing', () => {
    expect(loadConfig(containerEnvironment(dryRun)).dryRun).toBe(true);
    expect(rebalancerConfig(dryRun).DRY_RUN).toBe('true');
  });

  it('the default install acts', () => {
    expect(loadConfig(containerEnvironment(base)).dryRun).toBe(false);
  });

  it('switching between them changes the pod template, so kubectl apply restarts the pods', () => {
    // Pods read DRY_RUN from the ConfigMap only at start; a ConfigMap change alone restarts nothing.
    const template = (objects: KubeObject[]) => rebalancerDeployment(objects).spec?.template;
    expect(template(dryRun)).not.toEqual(template(base));
  });
});
