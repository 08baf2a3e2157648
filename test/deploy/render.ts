import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';

/** The repository root, so that paths in the tests read as they do in the docs. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The example overlay a user copies into their own repository. */
export const USER_OVERLAY = 'deploy/examples/kube-prometheus-stack';

/** Every kustomization a user may apply: the default install, each overlay, the user's example. */
export const KUSTOMIZATIONS = ['deploy', 'deploy/overlays/dry-run', USER_OVERLAY] as const;

/** How a user's overlay names this repository: a kustomize remote URL pinned with `?ref=`. */
export const REMOTE_BASE =
  /https:\/\/github\.com\/pod-rebalancer\/pod-rebalancer\/\/([\w/.-]+)\?ref=[\w.-]+/g;

/** One rendered Kubernetes object, before we know its kind. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/**
 * Renders a kustomization exactly as `kubectl apply -k` would, and parses the objects.
 * Throws, naming the fix, when kubectl is missing or the kustomization does not build.
 */
export function renderKustomization(
  dir: string,
  edit: (text: string) => string = (t) => t,
): KubeObject[] {
  const text = readFileSync(resolve(repoRoot, dir, 'kustomization.yaml'), 'utf8');
  const remote = text.match(REMOTE_BASE) !== null;
  if (!remote && edit(text) === text) return renderDirectory(dir);
  // A user's overlay points at the release on GitHub: render it against this checkout instead,
  // from a copy whose remote URLs become relative paths here (kustomize refuses absolute ones).
  const copy = mkdtempSync(join(tmpdir(), 'pod-rebalancer-overlay-'));
  try {
    // The whole folder, as the user copies it: the overlay may hold files of its own.
    cpSync(resolve(repoRoot, dir), copy, { recursive: true });
    const here = relative(copy, repoRoot);
    writeFileSync(
      join(copy, 'kustomization.yaml'),
      edit(text).replace(REMOTE_BASE, (_url, path: string) => join(here, path)),
    );
    return renderDirectory(copy);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

function renderDirectory(dir: string): KubeObject[] {
  const result = spawnSync('kubectl', ['kustomize', dir], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? 'kubectl is not on PATH: the deploy tests render deploy/ with `kubectl kustomize`. ' +
            'Install kubectl 1.22 or newer (it runs offline; no cluster is needed).'
        : `kubectl kustomize ${dir} could not run: ${result.error.message}`,
    );
  }
  if (result.status !== 0) {
    // kubectl before 1.22 bundles a kustomize (v2/v3) that cannot read this layout at all.
    throw new Error(
      `kubectl kustomize ${dir} failed (exit ${result.status}):\n${result.stderr}\n` +
        'If `kubectl version --client` is older than 1.22, upgrade kubectl first.',
    );
  }
  return parseYamlStream(result.stdout, `kubectl kustomize ${dir}`);
}

/**
 * Renders the default install with optional components added, the way a user's own
 * kustomization would (`resources: [deploy]`, `components: [...]`).
 */
export function renderWithComponents(components: readonly string[]): KubeObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-kustomize-'));
  try {
    // kustomize refuses absolute paths to other kustomizations; relative ones may leave the root.
    const from = (path: string) => relative(dir, join(repoRoot, path));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${from('deploy')}]\ncomponents: [${components.map(from).join(', ')}]\n`,
    );
    return renderKustomization(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseYamlStream(text: string, source: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) {
        throw new Error(`${source} printed invalid YAML: ${doc.errors[0]?.message}`);
      }
      return doc.toJS() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null);
}

/** `Kind/name`, the way kubectl names an object in messages. */
export function describeObject(object: KubeObject): string {
  return `${object.kind}/${object.metadata.name}`;
}

/** The objects of one kind. */
export function ofKind<T = KubeObject>(objects: KubeObject[], kind: string): T[] {
  return objects.filter((object) => object.kind === kind) as unknown as T[];
}

/** The one object of a kind and name; fails the test when it is missing. */
export function single<T>(objects: KubeObject[], kind: string, name: string): T {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (found === undefined) {
    throw new Error(`the rendered manifests hold no ${kind}/${name}`);
  }
  return found as unknown as T;
}

/** True when a label selector has matchLabels and all of them appear in the labels. */
export function selects(
  selector: { matchLabels?: Record<string, string> } | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  const wanted = Object.entries(selector?.matchLabels ?? {});
  return wanted.length > 0 && wanted.every(([key, value]) => labels?.[key] === value);
}

/** The pod-rebalancer Deployment. */
export function rebalancerDeployment(objects: KubeObject[]): IDeployment {
  return single<IDeployment>(objects, 'Deployment', 'pod-rebalancer');
}

/** The generated ConfigMap the service reads its environment from (its name ends in a hash). */
export function rebalancerConfigMap(objects: KubeObject[]): IConfigMap {
  const found = ofKind<IConfigMap>(objects, 'ConfigMap').filter((c) =>
    /^pod-rebalancer-config-[a-z0-9]{10}$/.test(c.metadata?.name ?? ''),
  );
  if (found.length !== 1) {
    throw new Error(`expected one ConfigMap pod-rebalancer-config-<hash>, found ${found.length}`);
  }
  return found[0]!;
}

/** The values of that ConfigMap. */
export function rebalancerConfig(objects: KubeObject[]): Record<string, string> {
  return rebalancerConfigMap(objects).data ?? {};
}

/** The pod template of every workload in the render (today: the one Deployment). */
export function podTemplates(
  objects: KubeObject[],
): { owner: string; template: IPodTemplateSpec }[] {
  const workloads = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'];
  return objects
    .filter((object) => workloads.includes(object.kind))
    .map((object) => ({
      owner: describeObject(object),
      template: (object as unknown as IDeployment).spec?.template ?? {},
    }));
}

/** Init and regular containers of a pod template. */
export function containersOf(template: IPodTemplateSpec): IContainer[] {
  return [...(template.spec?.initContainers ?? []), ...(template.spec?.containers ?? [])];
}
