import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import type { INetworkPolicyPort } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import {
  KUSTOMIZATIONS,
  rebalancerDeployment,
  renderKustomization,
  selects,
  single,
  type KubeObject,
} from './render.js';

/** A peer as `namespace/app`, or `any` when a rule has no `from`/`to` (all addresses). */
function peerNames(peers: INetworkPolicyPeer[] | undefined): string[] {
  if (peers === undefined || peers.length === 0) return ['any'];
  return peers.map((peer) => {
    const namespace = peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] ?? '?';
    const pod = peer.podSelector?.matchLabels ?? {};
    const app = pod['app.kubernetes.io/name'] ?? pod['k8s-app'] ?? '?';
    return peer.ipBlock ? `cidr ${peer.ipBlock.cidr}` : `${namespace}/${app}`;
  });
}

function portNames(ports: INetworkPolicyPort[] | undefined): string[] {
  return (ports ?? []).map((port) => `${port.protocol ?? 'TCP'} ${port.port}`);
}

describe.each(KUSTOMIZATIONS)('the network rendered by %s', (dir) => {
  let objects: KubeObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });

  it("exposes port 8080 named http through a Service that selects the Deployment's pods", () => {
    const service = single<IService>(objects, 'Service', 'pod-rebalancer');
    const podLabels = rebalancerDeployment(objects).spec?.template.metadata?.labels;
    expect(service.spec?.ports).toEqual([
      expect.objectContaining({ name: 'http', port: 8080, targetPort: 'http' }),
    ]);
    expect(selects({ matchLabels: service.spec?.selector }, podLabels)).toBe(true);
  });

  it('has Prometheus scrape /metrics on the Service http port through a ServiceMonitor', () => {
    const monitor = single<IServiceMonitor>(objects, 'ServiceMonitor', 'pod-rebalancer');
    const service = single<IService>(objects, 'Service', 'pod-rebalancer');
    expect(monitor.metadata?.namespace).toBe(service.metadata?.namespace);
    expect(selects(monitor.spec.selector, service.metadata?.labels)).toBe(true);
    expect(monitor.spec.endpoints).toEqual([
      expect.objectContaining({ port: 'http', path: '/metrics' }),
    ]);
  });

  it('admits traffic only from Alertmanager and Prometheus in monitoring, on the http port', () => {
    const policy = single<INetworkPolicy>(objects, 'NetworkPolicy', 'pod-rebalancer');
    const podLabels = rebalancerDeployment(objects).spec?.template.metadata?.labels;
    expect(selects(policy.spec?.podSelector, podLabels)).toBe(true);
    expect(policy.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    const ingress = (policy.spec?.ingress ?? []).map((rule) => ({
      from: peerNames(rule.from),
      ports: portNames(rule.ports),
    }));
    expect(ingress).toEqual([
      { from: ['monitoring/alertmanager'], ports: ['TCP http'] },
      { from: ['monitoring/prometheus'], ports: ['TCP http'] },
    ]);
  });

  it('lets traffic out only to DNS, the API server ports and Prometheus', () => {
    const policy = single<INetworkPolicy>(objects, 'NetworkPolicy', 'pod-rebalancer');
    const egress = (policy.spec?.egress ?? []).map((rule) => ({
      to: peerNames(rule.to),
      ports: portNames(rule.ports),
    }));
    expect(egress).toEqual([
      { to: ['kube-system/kube-dns'], ports: ['UDP 53', 'TCP 53'] },
      { to: ['any'], ports: ['TCP 443', 'TCP 6443'] },
      { to: ['monitoring/prometheus'], ports: ['TCP 9090'] },
    ]);
  });
});
