import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { checkCommand, PERMISSIONS } from '../../src/operator/check.js';
import { EXIT, runCommand } from '../../src/operator/command.js';
import { FakeKubeApiServer } from '../support/fake-kube.js';
import { TOKEN } from '../support/harness.js';
import { freePort } from '../support/processes.js';
import { buildDist, captureIo, runCli } from './cli.js';
import { FakeSeriesPrometheus } from './fake-series-prometheus.js';

const ALL_SERIES = {
  container_cpu_usage_seconds_total: 240,
  kube_pod_owner: 80,
  kube_replicaset_owner: 12,
};

describe('pod-rebalancer check', () => {
  let kube: FakeKubeApiServer;
  let prom: FakeSeriesPrometheus;
  let env: Record<string, string>;
  beforeEach(async () => {
    kube = await new FakeKubeApiServer().start();
    prom = await new FakeSeriesPrometheus().start();
    for (const [name, count] of Object.entries(ALL_SERIES)) prom.series.set(name, count);
    prom.alertRules.push({ name: 'DeploymentCPUImbalance', health: 'ok' });
    env = { PROMETHEUS_URL: prom.url, WEBHOOK_TOKEN: TOKEN };
  });
  afterEach(async () => {
    await Promise.all([kube.stop(), prom.stop()]);
  });

  const check = async (args: string[] = [], overrides: Record<string, string> = {}) => {
    const io = captureIo({ ...env, ...overrides }, { kubeConfig: kube.kubeConfig() });
    const code = await runCommand(io, () => checkCommand(args, io));
    return { code, out: io.out(), lines: io.out().trimEnd().split('\n'), err: io.err() };
  };
  const reviews = () =>
    kube.requests
      .filter((r) => r.path.endsWith('/selfsubjectaccessreviews'))
      .map((r) => r.body?.spec?.resourceAttributes);

  it('when everything is in place, then every check is one ok line and it exits 0', async () => {
    kube.allow = (a) => a.namespace !== 'kube-node-lease';
    const { code, lines } = await check();

    expect(code).toBe(EXIT.done);
    expect(lines).toEqual([
      'ok    configuration: valid',
      `ok    prometheus: reachable at ${prom.url}`,
      'ok    prometheus series container_cpu_usage_seconds_total: 240 series',
      'ok    prometheus series kube_pod_owner: 80 series',
      'ok    prometheus series kube_replicaset_owner: 12 series',
      'ok    prometheus alert rule DeploymentCPUImbalance: loaded (group fake), health ok',
      `ok    alert provenance: rules: alerts are confirmed by the rule engine at ${prom.url} (answers /api/v1/rules; 0 active alert(s) of DeploymentCPUImbalance now)`,
      `ok    kubernetes: API server reachable: context fake, server ${kube.url}, user fake`,
      'ok    kubernetes may get pods: in all namespaces',
      'ok    kubernetes may list pods: in all namespaces',
      'ok    kubernetes may create pods/eviction: in all namespaces',
      'ok    kubernetes may get deployments.apps: in all namespaces',
      'ok    kubernetes may list deployments.apps: in all namespaces',
      'ok    kubernetes may watch deployments.apps: in all namespaces',
      'ok    kubernetes may get horizontalpodautoscalers.autoscaling: in all namespaces',
      'ok    kubernetes may list horizontalpodautoscalers.autoscaling: in all namespaces',
      'ok    kubernetes may watch horizontalpodautoscalers.autoscaling: in all namespaces',
      'ok    kubernetes may create events: in all namespaces',
      ...['get', 'list', 'watch', 'create', 'update', 'delete'].map(
        (verb) =>
          `ok    kubernetes may ${verb} leases.coordination.k8s.io: in namespace pod-rebalancer (STATE_NAMESPACE)`,
      ),
      'ok    kubernetes may not update leases.coordination.k8s.io: in namespace kube-node-lease',
      'all 25 checks passed',
    ]);
  });

  it('asks one SelfSubjectAccessReview per permission: the ClusterRole cluster-wide, the Lease verbs in STATE_NAMESPACE only', async () => {
    await check([], { STATE_NAMESPACE: 'ops' });

    const leases = (verb: string) => ({
      verb,
      group: 'coordination.k8s.io',
      resource: 'leases',
      namespace: 'ops',
    });
    expect(reviews()).toEqual([
      { verb: 'get', group: '', resource: 'pods' },
      { verb: 'list', group: '', resource: 'pods' },
      { verb: 'create', group: '', resource: 'pods', subresource: 'eviction' },
      { verb: 'get', group: 'apps', resource: 'deployments' },
      { verb: 'list', group: 'apps', resource: 'deployments' },
      { verb: 'watch', group: 'apps', resource: 'deployments' },
      { verb: 'get', group: 'autoscaling', resource: 'horizontalpodautoscalers' },
      { verb: 'list', group: 'autoscaling', resource: 'horizontalpodautoscalers' },
      { verb: 'watch', group: 'autoscaling', resource: 'horizontalpodautoscalers' },
      { verb: 'create', group: '', resource: 'events' },
      ...['get', 'list', 'watch', 'create', 'update', 'delete'].map(leases),
      { ...leases('update'), namespace: 'kube-node-lease' },
    ]);
    expect(PERMISSIONS).toHaveLength(10);
  });

  it('when the service may still write node heartbeats (an old ClusterRole), then that line fails and says what to remove', async () => {
    const { code, lines } = await check();

    expect(code).toBe(EXIT.failure);
    expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([
      'FAIL  kubernetes may not update leases.coordination.k8s.io: granted in namespace kube-node-lease -> remove every Lease verb from the ClusterRole bound to the service (deploy/base/clusterrole.yaml of this version)',
    ]);
  });

  it('when RBAC grants list but not watch, then the watch lines pass and say the service lists periodically instead', async () => {
    kube.allow = (a) => a.verb !== 'watch' && a.namespace !== 'kube-node-lease';

    const { code, lines } = await check();

    expect(code).toBe(EXIT.done);
    expect(lines).toContain(
      'ok    kubernetes may watch deployments.apps: denied in all namespaces: the service lists every 30s instead of watching (pod_rebalancer_watch_polling is 1); grant watch to hear of changes at once',
    );
    expect(lines.filter((l) => l.includes('may watch leases'))).toEqual([
      expect.stringMatching(/^ok {4}kubernetes may watch leases.*: denied .*lists every 30s/),
    ]);
  });

  it('when ACTION=delete, then pod delete is checked too, and its fix names the delete-pods component', async () => {
    kube.allow = (a) => a.verb !== 'delete' || a.resource !== 'pods';

    const { lines } = await check([], { ACTION: 'delete' });

    expect(lines).toContain(
      'FAIL  kubernetes may delete pods: denied in all namespaces -> ACTION=delete needs deploy/components/delete-pods (or use ACTION=evict, the default)',
    );
  });

  it('when --namespace is given, then the cluster-wide permissions are checked in that namespace', async () => {
    const { lines } = await check(['--namespace', 'shop']);

    expect(
      reviews()
        .filter((a) => a.resource !== 'leases')
        .every((a) => a.namespace === 'shop'),
    ).toBe(true);
    expect(lines).toContain('ok    kubernetes may list pods: in namespace shop');
  });

  it('when kube-state-metrics is not scraped, then the two ownership series fail, naming what to install', async () => {
    prom.series.delete('kube_pod_owner');
    prom.series.delete('kube_replicaset_owner');

    const { code, lines } = await check();

    expect(code).toBe(EXIT.failure);
    expect(lines).toContain(
      'FAIL  prometheus series kube_pod_owner: no series match kube_pod_owner{owner_kind="ReplicaSet"} -> install kube-state-metrics and let Prometheus scrape it',
    );
    expect(lines).toContain(
      'FAIL  prometheus series kube_replicaset_owner: no series match kube_replicaset_owner{owner_kind="Deployment"} -> install kube-state-metrics and let Prometheus scrape it',
    );
    expect(lines).toContain(
      'ok    prometheus series container_cpu_usage_seconds_total: 240 series',
    );
  });

  it('when cAdvisor is not scraped, then the CPU series fails, saying to scrape it', async () => {
    prom.series.delete('container_cpu_usage_seconds_total');

    const { lines } = await check();

    expect(lines.find((l) => l.includes('container_cpu_usage_seconds_total'))).toMatch(
      /^FAIL .* -> let Prometheus scrape cAdvisor/,
    );
  });

  it('when CPU_SERIES_MATCHERS is set, then the CPU series are counted with those matchers', async () => {
    await check([], { CPU_SERIES_MATCHERS: 'job="kubelet"' });

    expect(prom.queries).toContain(
      'count(container_cpu_usage_seconds_total{container!="", container!="POD", job="kubelet"})',
    );
  });

  it('when PROMETHEUS_URL carries a user and password, then check prints it masked', async () => {
    const withPassword = prom.url.replace('http://', 'http://reader:s3cr3t-pw@');

    const { out, err } = await check([], { PROMETHEUS_URL: withPassword });

    expect(out).toContain(`prometheus: reachable at ${prom.url.replace('http://', 'http://***@')}`);
    expect(out + err).not.toContain('s3cr3t-pw');
  });

  it('when Prometheus answers 503, then the Prometheus line fails and the Kubernetes checks still run', async () => {
    prom.failWith = 503;

    const { code, lines } = await check();

    expect(code).toBe(EXIT.failure);
    expect(lines[1]).toBe(
      `FAIL  prometheus: ${prom.url}: Prometheus answered 503: injected -> check PROMETHEUS_URL, network policies (egress) and PROMETHEUS_BEARER_TOKEN_FILE`,
    );
    expect(lines.filter((l) => l.startsWith('ok    kubernetes may'))).toHaveLength(16);
  });

  it('when Prometheus is not there, then it says it is unreachable', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;

    const { lines } = await check([], { PROMETHEUS_URL: url });

    expect(lines[1]).toMatch(new RegExp(`^FAIL  prometheus: ${url}: Prometheus unreachable -> `));
  });

  it('when the Kubernetes API server is not there, then the Kubernetes line fails and says what to check', async () => {
    await kube.stop();

    const { code, lines } = await check();

    expect(code).toBe(EXIT.failure);
    expect(lines).toContain(
      `FAIL  kubernetes: context fake, server ${kube.url}, user fake: SelfSubjectAccessReview: API server unreachable -> check KUBECONFIG (or the in-cluster service account) and network policies`,
    );
    expect(lines.some((l) => l.includes('kubernetes may'))).toBe(false);
  });

  it('when the configuration is invalid, then each problem is a failed line and the other checks still run', async () => {
    const { code, lines } = await check([], { COOLDOWN: 'soon', WEBHOOK_TOKEN: '' });

    expect(code).toBe(EXIT.failure);
    expect(lines.slice(0, 2)).toEqual([
      'FAIL  configuration: COOLDOWN: expected a duration such as 30s, 15m or 1h30m (got "soon") -> fix the variable (docs/configuration.md)',
      'FAIL  configuration: WEBHOOK_TOKEN: required (or WEBHOOK_TOKEN_FILE, a file of tokens, one a line) -> fix the variable (docs/configuration.md)',
    ]);
    expect(lines).toContain(`ok    prometheus: reachable at ${prom.url}`);
    expect(lines).toContain('ok    kubernetes may list pods: in all namespaces');
  });

  it('when the webhook token file cannot be read, then the configuration check says so, as serve would', async () => {
    const { lines } = await check([], {
      WEBHOOK_TOKEN: '',
      WEBHOOK_TOKEN_FILE: '/nonexistent/token',
    });

    expect(lines[0]).toBe(
      'FAIL  configuration: WEBHOOK_TOKEN_FILE: cannot read the file (ENOENT) -> fix the variable (docs/configuration.md)',
    );
  });

  it('when --json is given, then it prints every check with ok, detail and fix', async () => {
    kube.allow = (a) => a.verb !== 'list';

    const { out } = await check(['--json']);
    const parsed = JSON.parse(out);

    expect(parsed.ok).toBe(false);
    expect(parsed.checks).toHaveLength(25);
    expect(parsed.checks).toContainEqual({
      check: 'kubernetes may list pods',
      ok: false,
      detail: 'denied in all namespaces',
      fix: expect.stringContaining('deploy/base/clusterrole.yaml'),
    });
  });

  it('when given an unknown flag, then it exits 2', async () => {
    const { code, err } = await check(['--all']);

    expect(code).toBe(EXIT.badInput);
    expect(err).toContain('unknown flag --all');
  });
});

describe('pod-rebalancer check, as a process', () => {
  let kube: FakeKubeApiServer;
  let prom: FakeSeriesPrometheus;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => buildDist(), 120_000);
  beforeEach(async () => {
    kube = await new FakeKubeApiServer().start();
    prom = await new FakeSeriesPrometheus().start();
    for (const [name, count] of Object.entries(ALL_SERIES)) prom.series.set(name, count);
    prom.alertRules.push({ name: 'DeploymentCPUImbalance', health: 'ok' });
    // As the base's RBAC answers: nothing in kube-node-lease.
    kube.allow = (a) => a.namespace !== 'kube-node-lease';
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-check-'));
    writeFileSync(join(dir, 'kubeconfig'), kube.kubeConfigText());
    env = { PROMETHEUS_URL: prom.url, WEBHOOK_TOKEN: TOKEN, KUBECONFIG: join(dir, 'kubeconfig') };
  });
  afterEach(async () => {
    await Promise.all([kube.stop(), prom.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('when everything is in place, then it exits 0 with the KUBECONFIG it was given', async () => {
    const run = await runCli(['check'], { env });

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `ok    kubernetes: API server reachable: context fake, server ${kube.url}, user fake`,
    );
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('all 25 checks passed');
  });

  it('when a permission is missing, then it exits 1', async () => {
    kube.allow = (a) => a.resource !== 'events' && a.namespace !== 'kube-node-lease';

    const run = await runCli(['check'], { env });

    expect(run.code).toBe(1);
    expect(run.stdout).toContain('FAIL  kubernetes may create events: denied in all namespaces');
  });
});
