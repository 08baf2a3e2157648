/**
 * `heap_mb_5000_fat_deployments`: the peak V8 heap of a process whose Deployment cache syncs
 * 5,000 Deployments of about 10 KB each (a 50 MB list), as `serve` does at start and after
 * every 410. The fake API server runs in the bench's process; the cache in a child of its own,
 * so that the figure is the cache's alone.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { DeploymentCache } from '../src/adapters/caches.js';
import { createKubeApis } from '../src/adapters/kube-api.js';
import { createLogger } from '../src/adapters/logger.js';
import { FakeKubeApiServer, seedFatDeployments } from '../test/support/fake-kube.js';

const DEPLOYMENTS = 5000;
const CHILD = 'POD_REBALANCER_BENCH_FAT_DEPLOYMENTS_KUBECONFIG';

export interface FatDeploymentsHeap {
  /** V8 heap in use before the cache started (MB). */
  beforeMb: number;
  /** The highest V8 heap in use until the cache had synced (MB), sampled every 2 ms. */
  peakMb: number;
  /** Deployments the cache held once synced. */
  cached: number;
  /** List requests, and the largest page asked for. */
  pages: number;
  limit: number;
}

/** Seeds the fake, runs the cache in a child until it has synced, and returns what it saw. */
export async function fatDeploymentsHeap(): Promise<FatDeploymentsHeap> {
  const kube = await new FakeKubeApiServer().start();
  seedFatDeployments(kube, DEPLOYMENTS);
  try {
    const child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [CHILD]: kube.kubeConfigText() },
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const answer = await new Promise<Omit<FatDeploymentsHeap, 'pages' | 'limit'>>(
      (resolve, reject) => {
        child.once('message', resolve as never);
        child.once('exit', (code) => reject(new Error(`the cache's process exited (${code})`)));
      },
    );
    child.kill();
    const lists = kube.collectionLists.filter((l) => l.path === 'deployments');
    return { ...answer, pages: lists.length, limit: Math.max(...lists.map((l) => l.limit)) };
  } finally {
    await kube.stop();
  }
}

/** In the child: the Deployment cache against the fake, heap sampled until it has synced. */
async function syncInChild(kubeConfigText: string): Promise<void> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(kubeConfigText);
  const cache = new DeploymentCache(kubeConfig, createKubeApis(kubeConfig, 60_000), undefined, {
    logger: createLogger('error'),
  });
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 2);
  cache.start();
  while (!cache.isSynced()) await new Promise((resolve) => setTimeout(resolve, 5));
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  let cached = 0;
  for (let i = 0; i < DEPLOYMENTS; i++) {
    if (cache.get(`team-${i % 50}`, `service-${i}`)) cached++;
  }
  await cache.stop();
  process.send?.({ beforeMb: before / 2 ** 20, peakMb: peak / 2 ** 20, cached });
}

const childKubeConfig = process.env[CHILD];
if (childKubeConfig) void syncInChild(childKubeConfig);
