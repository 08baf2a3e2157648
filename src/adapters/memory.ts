import type { GuardAnswer, Series } from '../core/guard.js';
import type { ActiveAlerts, RuleAlert } from '../core/provenance.js';
import type { CpuSamples, DeploymentFacts, PodFacts, Target } from '../core/types.js';
import type { BudgetEntry } from '../core/budget.js';
import type {
  ActionBudgetStore,
  BudgetRecord,
  Cluster,
  CooldownEntry,
  CooldownRecord,
  CooldownStart,
  CooldownStore,
  DeploymentEvent,
  GuardSource,
  MetricsSource,
  PodCpuQuery,
  PodRef,
  RemovalResult,
  RuleSource,
} from '../ports.js';

/**
 * In-process stand-ins for the ports, with the same semantics as the real ones where it
 * matters (uid preconditions, compare-and-swap on a version). The demo runs on them; unit
 * tests use them where HTTP would only add noise.
 */
export class InMemoryCluster implements Cluster {
  readonly deployments = new Map<string, DeploymentFacts>();
  readonly pods = new Map<string, PodFacts[]>();
  readonly events: DeploymentEvent[] = [];
  readonly removed: PodRef[] = [];
  /** Pods whose eviction a PodDisruptionBudget refuses. */
  readonly pdbBlocked = new Set<string>();
  /** How many pod lists were asked for (batched verification lists once per namespace). */
  podLists = 0;
  /** Called after a pod is removed, e.g. to start its replacement. */
  onRemoved: (deployment: DeploymentFacts, pod: PodFacts) => void = () => undefined;

  addDeployment(deployment: DeploymentFacts, pods: PodFacts[]): void {
    const key = `${deployment.namespace}/${deployment.name}`;
    this.deployments.set(key, deployment);
    this.pods.set(key, pods);
  }

  async getDeployment(target: Target): Promise<DeploymentFacts | undefined> {
    return this.deployments.get(`${target.namespace}/${target.deployment}`);
  }

  async readDeployment(target: Target): Promise<DeploymentFacts | undefined> {
    return this.getDeployment(target);
  }

  async listPods(deployment: DeploymentFacts): Promise<PodFacts[]> {
    return [...(this.pods.get(`${deployment.namespace}/${deployment.name}`) ?? [])];
  }

  async listPodsByDeployment(
    namespace: string,
    deployments: readonly DeploymentFacts[],
  ): Promise<Map<string, PodFacts[]>> {
    this.podLists++;
    return new Map(
      deployments.map((d) => [d.name, [...(this.pods.get(`${namespace}/${d.name}`) ?? [])]]),
    );
  }

  async evictPod(pod: PodRef): Promise<RemovalResult> {
    if (this.pdbBlocked.has(pod.name)) return 'pdb-blocked';
    return this.remove(pod);
  }

  async deletePod(pod: PodRef): Promise<RemovalResult> {
    return this.remove(pod);
  }

  async recordEvent(event: DeploymentEvent): Promise<void> {
    // A named Event exists once, as in the API server (the second create is a 409: already said).
    if (event.name !== undefined && this.events.some((e) => e.name === event.name)) return;
    this.events.push(event);
  }

  private remove(ref: PodRef): RemovalResult {
    for (const [key, pods] of this.pods) {
      const index = pods.findIndex((p) => p.name === ref.name && p.uid === ref.uid);
      if (index < 0 || !key.startsWith(`${ref.namespace}/`)) continue;
      const [pod] = pods.splice(index, 1);
      this.removed.push(ref);
      this.onRemoved(this.deployments.get(key)!, pod!);
      return 'removed';
    }
    return 'gone';
  }
}

/** Per-pod CPU, and the series of guard expressions, from tables the caller controls. */
export class StaticMetricsSource implements MetricsSource, GuardSource {
  readonly cpu = new Map<string, number>();
  /** Series by guard expression; an expression not in the table returns none. */
  readonly guardAnswers = new Map<string, Series[]>();
  queries = 0;

  async podCpu(query: PodCpuQuery): Promise<CpuSamples> {
    this.queries++;
    const samples = new Map<string, number>();
    for (const pod of query.pods) {
      const value = this.cpu.get(`${query.namespace}/${pod}`);
      if (value !== undefined) samples.set(pod, value);
    }
    return samples;
  }

  async guardSeries(expr: string): Promise<GuardAnswer> {
    return { count: (this.guardAnswers.get(expr) ?? []).length };
  }
}

/**
 * The simulated world's rule engine: the rule `alertname` has an alert active for each
 * Deployment the simulated cluster holds (labels alertname, namespace, deployment; no policy
 * annotations, like the default rule in rules/), plus whatever `fire` adds.
 */
export class InMemoryRuleEngine implements RuleSource {
  readonly fired: RuleAlert[] = [];
  requests = 0;

  constructor(
    private readonly cluster?: Pick<InMemoryCluster, 'deployments'>,
    private readonly alertname = 'DeploymentCPUImbalance',
  ) {}

  fire(alert: RuleAlert): void {
    this.fired.push(alert);
  }

  async activeAlerts(alertnames: readonly string[]): Promise<ActiveAlerts> {
    this.requests++;
    const firing: RuleAlert[] = [...(this.cluster?.deployments.values() ?? [])].map((d) => ({
      labels: { alertname: this.alertname, namespace: d.namespace, deployment: d.name },
      annotations: {},
    }));
    const active = new Map<string, RuleAlert[]>();
    for (const alert of [...firing, ...this.fired]) {
      const name = alert.labels.alertname ?? '';
      if (alertnames.includes(name)) active.set(name, [...(active.get(name) ?? []), alert]);
    }
    return active;
  }
}

/** A cooldown store with the Lease's compare-and-swap semantics. */
export class InMemoryCooldownStore implements CooldownStore {
  private readonly records = new Map<string, CooldownRecord>();
  private readonly uids = new Map<string, string>();
  private version = 0;

  async read(deployment: DeploymentFacts): Promise<CooldownRecord | undefined> {
    return this.records.get(`${deployment.namespace}/${deployment.name}`);
  }

  async start(
    deployment: DeploymentFacts,
    previous: CooldownRecord | undefined,
    next: CooldownStart,
  ): Promise<boolean> {
    const key = `${deployment.namespace}/${deployment.name}`;
    if (this.records.get(key)?.version !== previous?.version) return false;
    this.records.set(key, { ...next, version: String(++this.version) });
    this.uids.set(key, deployment.uid);
    return true;
  }

  howToResume(deployment: DeploymentFacts): string {
    return `clear the stop mark of ${deployment.namespace}/${deployment.name}`;
  }

  async list(): Promise<CooldownEntry[]> {
    return [...this.records].map(([key, record]) => {
      const [namespace = '', deployment = ''] = key.split('/');
      return { target: { namespace, deployment }, deploymentUid: this.uids.get(key)!, record };
    });
  }

  async remove(entry: CooldownEntry): Promise<boolean> {
    const key = `${entry.target.namespace}/${entry.target.deployment}`;
    if (this.records.get(key)?.version !== entry.record.version) return false;
    return this.records.delete(key);
  }

  /** What a person does with kubectl annotate: removes the stop mark. */
  resume(deployment: DeploymentFacts): void {
    const key = `${deployment.namespace}/${deployment.name}`;
    const record = this.records.get(key);
    if (record)
      this.records.set(key, { ...record, stopped: undefined, version: String(++this.version) });
  }
}

/** The action budget store with the Lease's compare-and-swap semantics. */
export class InMemoryActionBudgetStore implements ActionBudgetStore {
  private record: BudgetRecord | undefined;
  private version = 0;

  async read(): Promise<BudgetRecord | undefined> {
    return this.record && { ...this.record, entries: [...this.record.entries] };
  }

  async write(
    previous: BudgetRecord | undefined,
    entries: readonly BudgetEntry[],
  ): Promise<boolean> {
    if (this.record?.version !== previous?.version) return false;
    this.record = { version: String(++this.version), entries: [...entries] };
    return true;
  }
}
