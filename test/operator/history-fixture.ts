import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireProgram, startProgram, waitForReady, type Program } from '../support/processes.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** One pod of a planned history: when it exists and its CPU (cores) at each minute. */
export interface PlannedPod {
  name: string;
  /** Minutes after the start of the history; the pod exists in [from, to). */
  from: number;
  to: number;
  cpu: (minute: number) => number;
  /** A pause container with this CPU, which the per-pod expression must leave out. */
  pauseCpu?: number;
}

export interface PlannedDeployment {
  namespace: string;
  deployment: string;
  pods: PlannedPod[];
}

export interface HistoryPlan {
  startMs: number;
  minutes: number;
  deployments: PlannedDeployment[];
}

function series(name: string, labels: Record<string, string>): string {
  const text = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return `${name}{${text}}`;
}

function counterLines(
  key: string,
  pod: PlannedPod,
  plan: HistoryPlan,
  cpu: (m: number) => number,
): string[] {
  const lines: string[] = [];
  let total = 0;
  for (let m = pod.from; m < Math.min(pod.to, plan.minutes); m++) {
    lines.push(`${key} ${total.toFixed(3)} ${(plan.startMs + m * MINUTE) / 1000}`);
    total += cpu(m) * 60;
  }
  return lines;
}

function gaugeLines(key: string, range: { from: number; to: number }, plan: HistoryPlan): string[] {
  const lines: string[] = [];
  for (let m = range.from; m < Math.min(range.to, plan.minutes); m++) {
    lines.push(`${key} 1 ${(plan.startMs + m * MINUTE) / 1000}`);
  }
  return lines;
}

/**
 * The plan as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`: cAdvisor's
 * container counter (one sample a minute) and kube-state-metrics' ownership series, each series'
 * samples together and in time order, one metric family after the other.
 */
export function openMetrics(plan: HistoryPlan): string {
  const cpu: string[] = ['# TYPE container_cpu_usage_seconds counter'];
  const podOwner: string[] = ['# TYPE kube_pod_owner gauge'];
  const rsOwner: string[] = ['# TYPE kube_replicaset_owner gauge'];
  for (const d of plan.deployments) {
    const replicaset = `${d.deployment}-5d9f`;
    const { namespace } = d;
    for (const pod of d.pods) {
      const base = { namespace, pod: pod.name };
      cpu.push(
        ...counterLines(
          series('container_cpu_usage_seconds_total', { ...base, container: 'app' }),
          pod,
          plan,
          pod.cpu,
        ),
      );
      if (pod.pauseCpu !== undefined) {
        const pause = pod.pauseCpu;
        cpu.push(
          ...counterLines(
            series('container_cpu_usage_seconds_total', { ...base, container: 'POD' }),
            pod,
            plan,
            () => pause,
          ),
        );
      }
      const owner = {
        ...base,
        owner_kind: 'ReplicaSet',
        owner_name: replicaset,
        owner_is_controller: 'true',
      };
      podOwner.push(...gaugeLines(series('kube_pod_owner', owner), pod, plan));
    }
    const rs = {
      namespace,
      replicaset,
      owner_kind: 'Deployment',
      owner_name: d.deployment,
      owner_is_controller: 'true',
    };
    rsOwner.push(
      ...gaugeLines(series('kube_replicaset_owner', rs), { from: 0, to: plan.minutes }, plan),
    );
  }
  return [...cpu, ...podOwner, ...rsOwner, '# EOF', ''].join('\n');
}

/** A real Prometheus serving only the planned history, from blocks built by promtool. */
export interface HistoryPrometheus {
  url: string;
  program: Program;
}

/** Builds TSDB blocks from the plan with promtool and starts Prometheus on 127.0.0.1 over them. */
export async function startHistoryPrometheus(
  plan: HistoryPlan,
  dir: string,
  port: number,
): Promise<HistoryPrometheus> {
  requireProgram('prometheus', 'prometheus');
  requireProgram('promtool', 'prometheus');
  const file = join(dir, 'history.om');
  writeFileSync(file, openMetrics(plan));
  const data = join(dir, 'data');
  const built = spawnSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', file, data], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (built.status !== 0)
    throw new Error(`promtool create-blocks-from failed:\n${built.stdout}${built.stderr}`);
  writeFileSync(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  const program = startProgram('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${data}`,
    // The history lies in the past: keep it, whatever its age.
    '--storage.tsdb.retention.time=3650d',
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitForReady(`${url}/-/ready`, program, 60_000);
  return { url, program };
}
