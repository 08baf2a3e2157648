import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/adapters/logger.js';
import { loadConfig } from '../../src/config.js';
import { realAdapters } from '../../src/main.js';
import { createService } from '../../src/service.js';
import type { FakeKubeApiServer } from '../support/fake-kube.js';
import { CapturedLogs, TOKEN } from '../support/harness.js';
import {
  freePort,
  requireProgram,
  startProgram,
  waitForReady,
  type Program,
} from '../support/processes.js';
import type { SyntheticExporter } from './synthetic-exporter.js';

const RULES = new URL('../../rules/pod-rebalancer.rules.yml', import.meta.url);

/**
 * The rules of rules/pod-rebalancer.rules.yml with only the timing shortened: `for: 10m` → 5s and
 * the rate window 5m → 20s (the service's METRICS_WINDOW with it). A window longer than the data
 * divides a few seconds of increase by five minutes, so every rate would read ~10x low. The
 * expressions, the threshold and the guards are the ones in rules/.
 */
export function shortenedRules(): string {
  const rules = readFileSync(RULES, 'utf8');
  if (!/for: 10m/.test(rules) || !/\[5m\]/.test(rules)) {
    throw new Error(`${RULES.pathname} no longer has "for: 10m" and "[5m]": update shortenedRules`);
  }
  return rules.replace(/for: 10m/g, 'for: 5s').replace(/\[5m\]/g, '[20s]');
}

export interface ChainOptions {
  kube: FakeKubeApiServer;
  exporter: SyntheticExporter;
  logs: CapturedLogs;
  /** The service's environment beyond PROMETHEUS_URL, WEBHOOK_TOKEN and METRICS_WINDOW. */
  env?: Record<string, string>;
  /** More rule files for Prometheus to load, by file name (e.g. a critical alert to guard on). */
  extraRules?: Record<string, string>;
}

export interface Chain {
  promUrl: string;
  /** The service's base URL (POST /webhook below it). */
  serviceUrl: string;
  /** Alertmanager's base URL (its API v2 below it). */
  alertmanagerUrl: string;
  stop(): Promise<void>;
}

/**
 * The whole chain with the real programs: the synthetic exporter → a real Prometheus evaluating
 * the (shortened) rules → a real Alertmanager → the service's webhook (Bearer token, the real
 * app and adapters) → the fake Kubernetes API. Timing is shortened in the chain's own
 * configuration only: 1s scrape and evaluation intervals, Alertmanager timers of seconds.
 * An evicted pod disappears from the exporter, as cAdvisor and kube-state-metrics forget it.
 */
export async function startChain(options: ChainOptions): Promise<Chain> {
  requireProgram('prometheus', 'prometheus');
  requireProgram('prometheus-alertmanager', 'prometheus-alertmanager');
  const { kube, exporter, logs } = options;
  const dir = mkdtempSync(join(tmpdir(), 'pod-rebalancer-e2e-'));
  let prometheus: Program | undefined;
  let alertmanager: Program | undefined;
  let server: Server | undefined;
  const stop = async () => {
    await Promise.all([prometheus?.stop(), alertmanager?.stop()]);
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    kube.afterRequest = (method, path) => {
      const evicted = /namespaces\/([^/]+)\/pods\/([^/]+)\/eviction$/.exec(path);
      if (method === 'POST' && evicted) exporter.pods.delete(`${evicted[1]}/${evicted[2]}`);
    };
    const [servicePort, promPort, amPort] = [await freePort(), await freePort(), await freePort()];
    const promUrl = `http://127.0.0.1:${promPort}`;
    const env = {
      PROMETHEUS_URL: promUrl,
      WEBHOOK_TOKEN: TOKEN,
      METRICS_WINDOW: '20s',
      ...options.env,
    };
    const config = loadConfig(env);
    const service = createService(config, {
      ...realAdapters(config, env, kube.kubeConfig()),
      // Debug too: the tests count every decision, and a cooldown skip's repeats go to debug.
      logger: createLogger('debug', logs.transport()),
    });
    server = service.app.listen(servicePort, '127.0.0.1');

    const ruleFiles = { 'rules.yml': shortenedRules(), ...options.extraRules };
    for (const [name, text] of Object.entries(ruleFiles)) writeFileSync(join(dir, name), text);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s, evaluation_interval: 1s}',
        `rule_files: [${Object.keys(ruleFiles).map((name) => `'${join(dir, name)}'`)}]`,
        `alerting: {alertmanagers: [{static_configs: [{targets: ['127.0.0.1:${amPort}']}]}]}`,
        `scrape_configs: [{job_name: synthetic, static_configs: [{targets: ['${exporter.url}']}]}]`,
      ].join('\n'),
    );
    writeFileSync(join(dir, 'token'), TOKEN);
    writeFileSync(
      join(dir, 'alertmanager.yml'),
      [
        'route:',
        '  receiver: pod-rebalancer',
        '  group_by: [namespace, deployment]',
        '  group_wait: 1s',
        '  group_interval: 2s',
        '  repeat_interval: 3s',
        'receivers:',
        '  - name: pod-rebalancer',
        '    webhook_configs:',
        `      - url: http://127.0.0.1:${servicePort}/webhook`,
        '        send_resolved: true',
        `        http_config: {authorization: {type: Bearer, credentials_file: '${join(dir, 'token')}'}}`,
      ].join('\n'),
    );
    alertmanager = startProgram('prometheus-alertmanager', [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ]);
    prometheus = startProgram('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'prom-data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    await waitForReady(`http://127.0.0.1:${amPort}/-/ready`, alertmanager);
    await waitForReady(`${promUrl}/-/ready`, prometheus);
    return {
      promUrl,
      serviceUrl: `http://127.0.0.1:${servicePort}`,
      alertmanagerUrl: `http://127.0.0.1:${amPort}`,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Decisions the service logged for one Deployment with one reason. */
export function decisionsOf(logs: CapturedLogs, deployment: string, reason: string) {
  return logs.entries.filter(
    (e) => e.message === 'decision' && e.deployment === deployment && e.reason === reason,
  );
}
