import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One pod as cAdvisor and kube-state-metrics would describe it. */
export interface SyntheticPod {
  namespace: string;
  deployment: string;
  pod: string;
  /** CPU cores the application container uses. */
  cpu: number;
  /** CPU of the pod-level cgroup series (container=""), normally the sum; skewable on purpose. */
  podLevelCpu?: number;
  /** CPU of the pause container (container="POD"). */
  pauseCpu?: number;
}

/**
 * Serves cAdvisor's container_cpu_usage_seconds_total counters (growing at each pod's CPU rate)
 * and kube-state-metrics' kube_pod_owner and kube_replicaset_owner, for Prometheus to scrape.
 * Pods come and go through `pods`, as the test removes or adds them.
 */
export class SyntheticExporter {
  readonly pods = new Map<string, SyntheticPod>();
  /** Further series, as `name{labels}` → value (e.g. a broker's health, for a guard to read). */
  readonly gauges = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      res.writeHead(req.url === '/metrics' ? 200 : 404, {
        'content-type': 'text/plain; version=0.0.4',
      });
      res.end(req.url === '/metrics' ? this.exposition(Date.now()) : 'not found');
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
  }

  add(pod: SyntheticPod): void {
    this.pods.set(`${pod.namespace}/${pod.pod}`, pod);
  }

  private exposition(now: number): string {
    const cpu: string[] = ['# TYPE container_cpu_usage_seconds_total counter'];
    const podOwner: string[] = ['# TYPE kube_pod_owner gauge'];
    const rsOwner = new Set<string>();
    for (const [key, p] of this.pods) {
      if (!this.firstSeen.has(key)) this.firstSeen.set(key, now);
      const seconds = (now - this.firstSeen.get(key)!) / 1000;
      const series = (container: string, cores: number) =>
        `container_cpu_usage_seconds_total{namespace="${p.namespace}",pod="${p.pod}",container="${container}"} ${(cores * seconds).toFixed(6)}`;
      cpu.push(
        series('app', p.cpu),
        series('', p.podLevelCpu ?? p.cpu + 0.01),
        series('POD', p.pauseCpu ?? 0.001),
      );
      const replicaSet = `${p.deployment}-7d9f5c`;
      podOwner.push(
        `kube_pod_owner{namespace="${p.namespace}",pod="${p.pod}",owner_kind="ReplicaSet",owner_name="${replicaSet}",owner_is_controller="true"} 1`,
      );
      rsOwner.add(
        `kube_replicaset_owner{namespace="${p.namespace}",replicaset="${replicaSet}",owner_kind="Deployment",owner_name="${p.deployment}",owner_is_controller="true"} 1`,
      );
    }
    const gauges = [...this.gauges].map(([series, value]) => `${series} ${value}`);
    return [
      ...cpu,
      ...podOwner,
      '# TYPE kube_replicaset_owner gauge',
      ...rsOwner,
      ...gauges,
      '',
    ].join('\n');
  }
}
