import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
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

const TOKEN_SECRET = 'pod-rebalancer-webhook-token';
const TOKEN_FILE = '/var/run/secrets/pod-rebalancer/token';

/** What the kubelet enforces for a container: its own securityContext over the pod's. */
function effectiveSecurity(template: IPodTemplateSpec, container: IContainer): ISecurityContext {
  const pod = template.spec?.securityContext ?? {};
  return {
    runAsNonRoot: pod.runAsNonRoot,
    runAsUser: pod.runAsUser,
    seccompProfile: pod.seccompProfile,
    ...container.securityContext,
  };
}

/** Each container of each workload with its effective securityContext, named for messages. */
function containerSecurity(objects: KubeObject[]): [string, ISecurityContext][] {
  return podTemplates(objects).flatMap(({ owner, template }) =>
    containersOf(template).map((container): [string, ISecurityContext] => [
      `${owner} ${container.name}`,
      effectiveSecurity(template, container),
    ]),
  );
}

describe.each(KUSTOMIZATIONS)('pods rendered by %s', (dir) => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });

  it('run every pod as a non-root numeric user, so an added container inherits it', () => {
    const pods = podTemplates(objects).map(({ owner, template }) => ({
      owner,
      runAsNonRoot: template.spec?.securityContext?.runAsNonRoot,
      nonRootUser: (template.spec?.securityContext?.runAsUser ?? 0) > 0,
    }));
    expect(pods.length).toBeGreaterThan(0);
    for (const pod of pods) {
      expect(pod).toEqual({ owner: pod.owner, runAsNonRoot: true, nonRootUser: true });
    }
  });

  it('run every container as a non-root numeric user', () => {
    const containers = containerSecurity(objects);
    expect(containers.length).toBeGreaterThan(0);
    for (const [name, security] of containers) {
      expect({ name, runAsNonRoot: security.runAsNonRoot }).toEqual({ name, runAsNonRoot: true });
      expect({ name, runAsUser: security.runAsUser }).toEqual({
        name,
        runAsUser: expect.any(Number),
      });
      expect(security.runAsUser).toBeGreaterThan(0);
    }
  });

  it('run every container on a read-only root filesystem, unprivileged, with no capabilities', () => {
    const containers = containerSecurity(objects);
    expect(containers.length).toBeGreaterThan(0);
    for (const [name, security] of containers) {
      expect({ name, security }).toEqual({
        name,
        security: expect.objectContaining({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: expect.objectContaining({ drop: ['ALL'] }),
          seccompProfile: { type: 'RuntimeDefault' },
        }),
      });
      expect({ name, added: security.capabilities?.add ?? [] }).toEqual({ name, added: [] });
      expect({ name, privileged: security.privileged ?? false }).toEqual({
        name,
        privileged: false,
      });
    }
  });

  it('give Node a writable /tmp even though the root filesystem is read-only', () => {
    const spec = rebalancerDeployment(objects).spec?.template.spec;
    const mount = spec?.containers[0]?.volumeMounts?.find((m) => m.mountPath === '/tmp');
    const volume = spec?.volumes?.find((v) => v.name === mount?.name);
    expect(mount?.readOnly ?? false).toBe(false);
    expect(volume?.emptyDir).toBeDefined();
  });

  it('mount the webhook token Secret as the file WEBHOOK_TOKEN_FILE names', () => {
    const spec = rebalancerDeployment(objects).spec?.template.spec;
    const container = spec?.containers[0];
    const tokenFile = container?.env?.find((e) => e.name === 'WEBHOOK_TOKEN_FILE')?.value;
    expect(tokenFile).toBe(TOKEN_FILE);

    const volume = spec?.volumes?.find((v) => v.secret?.secretName === TOKEN_SECRET);
    const mount = container?.volumeMounts?.find((m) => m.name === volume?.name);
    // Mounted as a directory (no subPath), so a rotated Secret reaches the running pod.
    expect(mount).toEqual({
      name: volume?.name,
      mountPath: '/var/run/secrets/pod-rebalancer',
      readOnly: true,
    });
    expect(volume?.secret?.items).toEqual([{ key: 'token', path: 'token' }]);
    expect(volume?.secret?.optional ?? false).toBe(false);
  });

  it('hold no literal webhook token: no Secret object, no WEBHOOK_TOKEN variable or config key', () => {
    expect(ofKind(objects, 'Secret')).toEqual([]);
    expect(Object.keys(rebalancerConfig(objects))).not.toContain('WEBHOOK_TOKEN');
    const tokenVariables = podTemplates(objects).flatMap(({ template }) =>
      containersOf(template).flatMap((container) =>
        (container.env ?? []).filter((variable) => variable.name === 'WEBHOOK_TOKEN'),
      ),
    );
    expect(tokenVariables).toEqual([]);
  });
});
