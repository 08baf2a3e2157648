import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import {
  KUSTOMIZATIONS,
  containersOf,
  podTemplates,
  rebalancerDeployment,
  renderKustomization,
  selects,
  single,
  type KubeObject,
} from './render.js';

describe.each(KUSTOMIZATIONS)('the Deployment rendered by %s', (dir) => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });

  it('runs two replicas spread across nodes, so one node going down leaves the webhook served', () => {
    const spec = rebalancerDeployment(objects).spec;
    expect(spec?.replicas).toBe(2);
    const podLabels = spec?.template.metadata?.labels;
    const spreads = (spec?.template.spec?.topologySpreadConstraints ?? []).filter(
      (c) => c.topologyKey === 'kubernetes.io/hostname' && selects(c.labelSelector, podLabels),
    );
    const antiAffinity = [
      ...(spec?.template.spec?.affinity?.podAntiAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
      ...(
        spec?.template.spec?.affinity?.podAntiAffinity
          ?.preferredDuringSchedulingIgnoredDuringExecution ?? []
      ).map((preferred) => preferred.podAffinityTerm),
    ].filter(
      (term) =>
        term.topologyKey === 'kubernetes.io/hostname' && selects(term.labelSelector, podLabels),
    );
    expect(spreads.length + antiAffinity.length).toBeGreaterThan(0);
  });

  it('keeps one replica through voluntary disruptions with a PodDisruptionBudget', () => {
    const deployment = rebalancerDeployment(objects);
    const budget = single<IPodDisruptionBudget>(objects, 'PodDisruptionBudget', 'pod-rebalancer');
    expect(budget.spec?.minAvailable).toBe(1);
    expect(selects(budget.spec?.selector, deployment.spec?.template.metadata?.labels)).toBe(true);
  });

  it('checks readiness on /readyz and liveness on /healthz, on the served port', () => {
    const container = rebalancerDeployment(objects).spec?.template.spec?.containers[0];
    const http = container?.ports?.find((port) => port.name === 'http');
    expect(http?.containerPort).toBe(8080);
    expect(container?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
  });

  it('gives every container CPU and memory requests and limits', () => {
    const missing = podTemplates(objects).flatMap(({ owner, template }) =>
      containersOf(template).flatMap((container) =>
        ['requests', 'limits'].flatMap((kind) =>
          ['cpu', 'memory']
            .filter((resource) => {
              const amounts = container.resources?.[kind as 'requests' | 'limits'];
              return amounts?.[resource] === undefined;
            })
            .map((resource) => `${owner} ${container.name} ${kind}.${resource}`),
        ),
      ),
    );
    expect(missing).toEqual([]);
  });

  it('runs a pinned image, never :latest or an untagged one', () => {
    const images = podTemplates(objects).flatMap(({ template }) =>
      containersOf(template).map((container) => container.image ?? ''),
    );
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image).toMatch(/(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/);
      expect(image).not.toMatch(/:latest$/);
    }
  });

  it('runs the image as built: no command or args override its node entrypoint', () => {
    // The image starts `node dist/cli.js serve` with node as PID 1, so SIGTERM reaches the drain.
    const container = rebalancerDeployment(objects).spec?.template.spec?.containers[0];
    expect(container?.command).toBeUndefined();
    expect(container?.args).toBeUndefined();
  });
});
