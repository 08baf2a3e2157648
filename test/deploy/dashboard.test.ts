import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  seedAutoscaler,
  seedDeployment,
  seedImbalanced,
  startHarness,
  TOKEN,
  type Harness,
} from '../support/harness.js';
import {
  freePort,
  requireProgram,
  startProgram,
  waitFor,
  waitForReady,
  type Program,
} from '../support/processes.js';
import { renderKustomization, repoRoot, USER_OVERLAY } from './render.js';

const DASHBOARD = 'deploy/components/grafana-dashboard/pod-rebalancer-dashboard.json';

interface Target {
  refId: string;
  expr: string;
}
interface Panel {
  id: number;
  title: string;
  datasource: { uid: string };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; definition?: string }[] };
}

const dashboard = JSON.parse(readFileSync(join(repoRoot, DASHBOARD), 'utf8')) as Dashboard;

/** What Grafana substitutes before sending a query: every cluster/namespace/Deployment, a short window. */
function asSent(expr: string): string {
  return expr
    .replace(/\$__rate_interval/g, '30s')
    .replace(/\$cluster/g, '.*')
    .replace(/\$namespace/g, '.*')
    .replace(/\$deployment/g, '.*');
}

const firing = (namespace: string, deployment: string) => ({
  version: '4',
  status: 'firing',
  alerts: [
    {
      status: 'firing',
      fingerprint: `${namespace}-${deployment}`,
      labels: { alertname: 'DeploymentCPUImbalance', namespace, deployment },
    },
  ],
});

describe('the Grafana dashboard, against a real Prometheus scraping the running service', () => {
  let h: Harness;
  let server: Server;
  let prometheus: Program | undefined;
  let promUrl: string;
  let dir: string;

  const query = async (expr: string) => {
    const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as { status: string; error?: string; data?: { result: [] } };
  };
  const samples = async (expr: string) => (await query(expr)).data?.result.length ?? 0;

  beforeAll(async () => {
    requireProgram('prometheus', 'prometheus');
    h = await startHarness();
    seedImbalanced(h, 'payments', 'api');
    seedImbalanced(h, 'shop', 'web');
    // Two camps of pods (no-improvement-expected), and one an autoscaler is scaling (scaling).
    const camps = Object.fromEntries(
      Array.from({ length: 12 }, (_, i) => [`camps-${i}`, i < 6 ? 1.0 : 0.1]),
    );
    seedDeployment(h, { namespace: 'payments', name: 'camps', cpu: camps });
    seedImbalanced(h, 'payments', 'scaled');
    seedAutoscaler(h, {
      namespace: 'payments',
      name: 'scaled',
      target: 'scaled',
      desiredReplicas: 8,
      currentReplicas: 5,
    });
    const servicePort = await freePort();
    server = h.service.app.listen(servicePort, '127.0.0.1');
    dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-dashboard-'));
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s}',
        `scrape_configs: [{job_name: pod-rebalancer, static_configs: [{targets: ['127.0.0.1:${servicePort}']}]}]`,
      ].join('\n'),
    );
    prometheus = startProgram('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    await waitForReady(`${promUrl}/-/ready`, prometheus);
    // A few scrapes before anything happens, so that rate() and increase() see the change.
    await waitFor(
      'three scrapes of the service',
      async () => (await samples('count_over_time(pod_rebalancer_build_info[1m]) >= 3')) > 0,
      30_000,
    );

    const post = (body: unknown) =>
      fetch(`http://127.0.0.1:${servicePort}/webhook`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post(firing('payments', 'api'))).status).toBe(200); // rebalanced
    expect((await post(firing('payments', 'api'))).status).toBe(200); // cooldown
    expect((await post(firing('payments', 'camps'))).status).toBe(200); // no-improvement-expected
    expect((await post(firing('payments', 'scaled'))).status).toBe(200); // scaling
    h.prom.fail({ status: 503, times: 5 });
    expect((await post(firing('shop', 'web'))).status).toBe(503); // Prometheus unavailable

    await waitFor(
      'the removals in Prometheus',
      async () => (await samples('pod_rebalancer_pods_removed_total > 0')) > 0,
      30_000,
    );
    await waitFor(
      'two scrapes after the removals',
      async () =>
        (await samples('count_over_time(pod_rebalancer_pods_removed_total[1m]) >= 3')) > 0,
      30_000,
    );
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when every panel query is sent as Grafana sends it, then each parses and returns a series', async () => {
    const answers = await Promise.all(
      dashboard.panels.flatMap((panel) =>
        panel.targets.map(async (target) => {
          const answer = await query(asSent(target.expr));
          return {
            panel: `${panel.title} (${target.refId})`,
            status: answer.status,
            error: answer.error,
            series: answer.data?.result.length ?? 0,
          };
        }),
      ),
    );

    expect(answers.filter((a) => a.status !== 'success' || a.series === 0)).toEqual([]);
    expect(answers.length).toBeGreaterThanOrEqual(10);
  });

  it('when the namespace and deployment variables are resolved, then they list what the service saw', async () => {
    const values = async (label: string) => {
      const response = await fetch(
        `${promUrl}/api/v1/label/${label}/values?match[]=pod_rebalancer_deployment_cpu_stddev_cores`,
      );
      return ((await response.json()) as { data: string[] }).data;
    };
    const definitions = dashboard.templating.list
      .filter((v) => v.type === 'query')
      .map((v) => v.definition);

    expect(definitions).toEqual([
      'label_values(pod_rebalancer_build_info, cluster)',
      'label_values(pod_rebalancer_deployment_cpu_stddev_cores{cluster=~"$cluster"}, namespace)',
      'label_values(pod_rebalancer_deployment_cpu_stddev_cores{cluster=~"$cluster", namespace=~"$namespace"}, deployment)',
    ]);
    expect(await values('namespace')).toEqual(['payments']);
    expect(await values('deployment')).toEqual(['api', 'camps']);
  });

  it('when decisions are skipped as no-improvement-expected or scaling, then the decisions panel shows those reasons', async () => {
    const panel = dashboard.panels.find((p) => p.title === 'Decisions by outcome and reason')!;
    const answer = (await query(asSent(panel.targets[0]!.expr))) as {
      data?: { result: { metric: { reason: string } }[] };
    };

    const reasons = answer.data?.result.map((series) => series.metric.reason) ?? [];
    expect(reasons).toEqual(expect.arrayContaining(['no-improvement-expected', 'scaling']));
  });
});

describe('the dashboard as shipped', () => {
  const exprs = dashboard.panels.flatMap((panel) =>
    panel.targets.map((t) => ({ panel: panel.title, expr: t.expr })),
  );

  it('has a cluster variable that every query filters on (All matches series without the label too)', () => {
    const cluster = dashboard.templating.list.find((v) => v.name === 'cluster') as
      { includeAll: boolean; allValue: string } | undefined;

    expect(cluster).toMatchObject({ includeAll: true, allValue: '.*' });
    expect(exprs.filter((e) => !e.expr.includes('cluster=~"$cluster"'))).toEqual([]);
  });

  it('shows every skip reason in the decisions panel: it sums by reason and filters none out', () => {
    const panel = dashboard.panels.find((p) => p.title === 'Decisions by outcome and reason')!;

    expect(panel.targets.map((t) => t.expr)).toEqual([
      'sum by (outcome, reason) (increase(pod_rebalancer_alerts_total{cluster=~"$cluster"}[$__rate_interval])) > 0',
    ]);
  });

  it('has budget, guard, provenance and rotation panels', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join('\n');

    for (const topic of ['budget', 'guard', 'provenance', 'rotation']) {
      expect(titles).toContain(topic);
    }
  });

  it('draws a "per Deployment" panel with one series per Deployment, whatever the number of replicas', () => {
    const perDeployment = dashboard.panels.filter((p) => /per Deployment/.test(p.title));

    expect(perDeployment.length).toBeGreaterThanOrEqual(3);
    for (const panel of perDeployment) {
      expect(panel.targets[0]!.expr).toMatch(/^\w+ by \(namespace, deployment[,)]/);
    }
  });

  it('uses the datasource variable in every panel and query, so it works with any Prometheus', () => {
    const uids = dashboard.panels.flatMap((panel) => [
      panel.datasource.uid,
      ...panel.targets.map((t) => (t as Target & { datasource: { uid: string } }).datasource.uid),
    ]);

    expect(new Set(uids)).toEqual(new Set(['${datasource}']));
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
  });

  it('is rendered by the user overlay as a ConfigMap the Grafana sidecar picks up', () => {
    const configMap = renderKustomization(USER_OVERLAY).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'pod-rebalancer-dashboard',
    ) as unknown as { metadata: { labels: Record<string, string> }; data: Record<string, string> };

    expect(configMap.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(configMap.data['pod-rebalancer.json']!)).toEqual(dashboard);
  });
});
