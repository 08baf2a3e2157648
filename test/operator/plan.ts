import { HOUR, MINUTE, type HistoryPlan, type PlannedPod } from './history-fixture.js';

/** Minutes [from, to) of each planned episode, from the start of the history. */
export const EPISODES = {
  /** web: web-a hot, web-e cold for an hour: stddev ≈ 0.52, above every threshold. */
  strong: { from: 120, to: 180 },
  /** web: web-b at 2 cores for 4 minutes: above the thresholds, shorter than `for: 10m`. */
  spike: { from: 480, to: 484 },
  /** web: web-c warm, web-d cold for 80 minutes: stddev ≈ 0.35, above 0.3 but not 0.4. */
  moderate: { from: 840, to: 920 },
  /** web: web-a hot from 20:00; web-e is replaced at 20:05 by web-f, cold because it is new. */
  young: { from: 1200, to: 1260 },
  /** worker: four hours of imbalance: every action is ineffective, the backoff stops it. */
  long: { from: 60, to: 300 },
} as const;

export const REPLACED_AT = 1205;

const during =
  (episode: { from: number; to: number }, inside: number, outside: number) => (m: number) =>
    m >= episode.from && m < episode.to ? inside : outside;

const webPods: PlannedPod[] = [
  {
    name: 'web-a',
    from: 0,
    to: 1440,
    cpu: (m) =>
      during(EPISODES.strong, 1.6, 0.5)(m) === 1.6 ? 1.6 : during(EPISODES.young, 1.6, 0.5)(m),
  },
  { name: 'web-b', from: 0, to: 1440, cpu: during(EPISODES.spike, 2.0, 0.5) },
  { name: 'web-c', from: 0, to: 1440, cpu: during(EPISODES.moderate, 1.15, 0.52) },
  { name: 'web-d', from: 0, to: 1440, cpu: during(EPISODES.moderate, 0.05, 0.48) },
  // Its pause container burns 3 cores: counted, it would make every minute an imbalance.
  { name: 'web-e', from: 0, to: REPLACED_AT, cpu: during(EPISODES.strong, 0.05, 0.5), pauseCpu: 3 },
  { name: 'web-f', from: REPLACED_AT, to: 1440, cpu: during(EPISODES.young, 0.05, 0.5) },
];

const workerPods: PlannedPod[] = [
  { name: 'worker-1', from: 0, to: 1440, cpu: during(EPISODES.long, 1.5, 0.4) },
  { name: 'worker-2', from: 0, to: 1440, cpu: () => 0.4 },
  { name: 'worker-3', from: 0, to: 1440, cpu: () => 0.42 },
  { name: 'worker-4', from: 0, to: 1440, cpu: during(EPISODES.long, 0.02, 0.38) },
];

/** One day of history at one sample a minute, ending six hours ago. */
export function dayPlan(now = Date.now()): HistoryPlan {
  return {
    startMs: Math.floor(now / HOUR) * HOUR - 30 * HOUR,
    minutes: 1440,
    deployments: [
      { namespace: 'shop', deployment: 'web', pods: webPods },
      { namespace: 'shop', deployment: 'worker', pods: workerPods },
    ],
  };
}

/** The planned CPU of every pod of a Deployment that exists at time `ms`. */
export function plannedAt(plan: HistoryPlan, deployment: string, ms: number) {
  const minute = Math.floor((ms - plan.startMs) / MINUTE);
  const d = plan.deployments.find((x) => x.deployment === deployment)!;
  return d.pods
    .filter((p) => minute >= p.from && minute < p.to)
    .map((p) => ({
      name: p.name,
      cpu: p.cpu(minute),
      startedAt: new Date(plan.startMs + p.from * MINUTE),
    }));
}
