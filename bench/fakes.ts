/**
 * A child process that hosts the fake Kubernetes API server and the fake Prometheus from
 * test/support, so that in the benchmark they run on their own core, as real upstreams would,
 * and do not steal time from the service being measured. Driven over IPC (see FakesCommand).
 */
import { FakeKubeApiServer } from '../test/support/fake-kube.js';
import { FakePrometheus } from '../test/support/fake-prometheus.js';
import { seedDeployment } from '../test/support/harness.js';
import { POD_CPU, preciseNow, type Counts, type FakesCommand, type World } from './shared.js';

let kube: FakeKubeApiServer | undefined;
let prom: FakePrometheus | undefined;
let evictionTimes: number[] = [];

/** Half busy, half idle (stddev ≈ 0.4 cores), one hottest and one coldest. */
function spread(count: number): number[] {
  return Array.from({ length: count }, (_, i) =>
    i === 0 ? 2 : i === 1 ? 0.01 : i % 2 ? 0.9 : 0.1,
  );
}

async function seed(world: World): Promise<{ kubeUrl: string; promUrl: string }> {
  await Promise.all([kube?.stop(), prom?.stop()]);
  kube = await new FakeKubeApiServer().start();
  prom = await new FakePrometheus().start();
  evictionTimes = [];
  kube.afterRequest = (method, path) => {
    if (method === 'POST' && path.endsWith('/eviction')) evictionTimes.push(preciseNow());
  };
  for (let n = 0; n < world.namespaces; n++) {
    for (let d = 0; d < world.deploymentsPerNamespace; d++) {
      const name = `app-${d}`;
      const count = world.podsPerDeployment ?? POD_CPU.length;
      const values = count === POD_CPU.length ? POD_CPU : spread(count);
      const cpu = Object.fromEntries(values.map((value, i) => [`${name}-${i}`, value]));
      seedDeployment({ kube, prom }, { namespace: `ns-${n}`, name, cpu });
    }
  }
  return { kubeUrl: kube.url, promUrl: prom.url };
}

/** A collection's path (a list or a watch), not one object's. */
const COLLECTION = /\/(pods|deployments|leases|horizontalpodautoscalers)$/;

async function handle(message: FakesCommand): Promise<unknown> {
  switch (message.cmd) {
    case 'seed':
      return seed(message.world);
    case 'counts':
      return {
        kubernetesCalls: kube?.requests.length ?? 0,
        kubernetesLists:
          kube?.requests.filter((r) => r.method === 'GET' && COLLECTION.test(r.path)).length ?? 0,
        evictions: kube?.requests.filter((r) => r.path.endsWith('/eviction')).length ?? 0,
        prometheusQueries: prom?.queries.length ?? 0,
        rulesRequests: prom?.rulesRequests.length ?? 0,
      } satisfies Counts;
    case 'prometheus-delay':
      prom?.fail({ delayMs: message.delayMs, times: message.times });
      return {};
    case 'eviction-times':
      return evictionTimes;
  }
}

if (process.send) {
  process.on('message', (message: FakesCommand & { id: number }) => {
    void handle(message).then((answer) => process.send!({ id: message.id, answer }));
  });
  process.on('disconnect', () => {
    void Promise.all([kube?.stop(), prom?.stop()]).then(() => process.exit(0));
  });
}
