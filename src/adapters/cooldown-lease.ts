import { createHash } from 'node:crypto';
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { RotationProgress } from '../core/rotation.js';
import type { DeploymentFacts, Target } from '../core/types.js';
import type {
  ActionRecord,
  AttemptRecord,
  CooldownEntry,
  CooldownRecord,
  CooldownStart,
  CooldownStore,
} from '../ports.js';
import { statusOf, toUpstreamError, type KubeApis } from './kube-api.js';
import { LeaseRegister } from './lease-cas.js';
import { listPaged } from './paging.js';
import { oncePerVersion } from './watch-cache.js';

export const LAST_ACTION_ANNOTATION = 'pod-rebalancer.io/last-action';
/** The last attempt that removed no pod, kept apart from the last action (never judged). */
export const LAST_ATTEMPT_ANNOTATION = 'pod-rebalancer.io/last-attempt';
export const CONSECUTIVE_INEFFECTIVE_ANNOTATION = 'pod-rebalancer.io/consecutive-ineffective';
/** Present while pod-rebalancer refuses to act on the Deployment; removing it resumes. */
export const INEFFECTIVE_ANNOTATION = 'pod-rebalancer.io/ineffective';
/** A one-by-one rotation's progress (JSON), so that any replica can finish it. */
export const ROTATION_ANNOTATION = 'pod-rebalancer.io/rotation';
/** Which Deployment a cooldown Lease belongs to (labels, so `kubectl get leases -l` finds them). */
export const NAMESPACE_LABEL = 'pod-rebalancer.io/namespace';
export const DEPLOYMENT_LABEL = 'pod-rebalancer.io/deployment';
/** The Deployment's full name (a label value holds only 63 characters) and its uid. */
export const DEPLOYMENT_ANNOTATION = 'pod-rebalancer.io/deployment';
export const DEPLOYMENT_UID_ANNOTATION = 'pod-rebalancer.io/deployment-uid';
/** Selects the cooldown Leases among everything else in STATE_NAMESPACE (e.g. the budget). */
export const COOLDOWN_SELECTOR = `${NAMESPACE_LABEL},${DEPLOYMENT_LABEL}`;

const MAX_NAME = 253;
const MAX_LABEL_VALUE = 63;

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Cuts `text` to leave room for `-<hash>`, never ending on a character a name cannot end on. */
function truncateWithHash(text: string, max: number, hashOf: string, hashLength: number): string {
  const kept = text.slice(0, max - hashLength - 1).replace(/[-._]+$/, '');
  return `${kept}-${shortHash(hashOf, hashLength)}`;
}

/**
 * The cooldown Lease of a Deployment, in STATE_NAMESPACE: `<namespace>.<deployment>`. A
 * namespace name holds no dot, so the first dot separates the two and no two Deployments share
 * a name ("a-b"/"c" is `a-b.c`, "a"/"b-c" is `a.b-c`); names of the service's other Leases (the
 * budget) hold no dot, so they never collide with these. Past 253 characters, the name is cut
 * and ends in a hash of the whole.
 */
export function leaseName(target: Target): string {
  const name = `${target.namespace}.${target.deployment}`;
  if (name.length <= MAX_NAME) return name;
  return truncateWithHash(name, MAX_NAME, `${target.namespace}/${target.deployment}`, 16);
}

/** A label value (at most 63 characters) naming the Deployment; a longer name is cut and hashed. */
export function deploymentLabelValue(deployment: string): string {
  if (deployment.length <= MAX_LABEL_VALUE) return deployment;
  return truncateWithHash(deployment, MAX_LABEL_VALUE, deployment, 10);
}

/** A JSON annotation with an `at` time (the last action, the last attempt); unreadable: none. */
function parseTimed<T extends { at: Date }>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as T & { at: string };
    return { ...parsed, at: new Date(parsed.at) };
  } catch {
    return undefined;
  }
}

const ROTATION_DATES = ['startedAt', 'deadline', 'endedAt'] as const;

function parseRotation(text: string | undefined): RotationProgress | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as RotationProgress;
    for (const key of ROTATION_DATES) if (parsed[key]) parsed[key] = new Date(parsed[key]);
    if (parsed.claim) parsed.claim.at = new Date(parsed.claim.at);
    return parsed;
  } catch {
    return undefined;
  }
}

/** A Lease's record, its JSON annotations parsed once per version of the cached Lease. */
const toRecord = oncePerVersion(parseRecord);

function parseRecord(lease: V1Lease): CooldownRecord {
  const { holderIdentity = '', acquireTime, leaseDurationSeconds = 0 } = lease.spec ?? {};
  const { resourceVersion = '', annotations = {} } = lease.metadata ?? {};
  return {
    version: resourceVersion,
    holder: holderIdentity,
    // Read back as a string or a Date depending on the client's deserializer.
    startedAt: new Date(acquireTime ?? 0),
    durationMs: leaseDurationSeconds * 1000,
    lastAction: parseTimed<ActionRecord>(annotations[LAST_ACTION_ANNOTATION]),
    lastAttempt: parseTimed<AttemptRecord>(annotations[LAST_ATTEMPT_ANNOTATION]),
    consecutiveIneffective: Number(annotations[CONSECUTIVE_INEFFECTIVE_ANNOTATION] ?? 0) || 0,
    stopped: annotations[INEFFECTIVE_ANNOTATION],
    rotation: parseRotation(annotations[ROTATION_ANNOTATION]),
  };
}

/**
 * The state of a Deployment that has none yet, at the version of a Lease left by an earlier
 * Deployment of the same name: nothing carries over, and the next write replaces that Lease.
 */
function freshRecord(version: string): CooldownRecord {
  return {
    version,
    holder: '',
    startedAt: new Date(0),
    durationMs: 0,
    lastAction: undefined,
    consecutiveIneffective: 0,
    stopped: undefined,
  };
}

/** The Deployment a cooldown Lease belongs to, from its labels and annotations. */
export function entryOf(lease: V1Lease): CooldownEntry | undefined {
  const { labels = {}, annotations = {} } = lease.metadata ?? {};
  const namespace = labels[NAMESPACE_LABEL];
  const deployment = annotations[DEPLOYMENT_ANNOTATION] ?? labels[DEPLOYMENT_LABEL];
  if (!namespace || !deployment) return undefined;
  return {
    target: { namespace, deployment },
    deploymentUid: annotations[DEPLOYMENT_UID_ANNOTATION] ?? '',
    record: toRecord(lease),
  };
}

/** What a Lease says about one Deployment: its state, or fresh when written for a namesake. */
export function recordFor(lease: V1Lease, deployment: DeploymentFacts): CooldownRecord {
  const uid = lease.metadata?.annotations?.[DEPLOYMENT_UID_ANNOTATION];
  // A Deployment deleted and created again under the same name starts fresh.
  if (uid !== deployment.uid) return freshRecord(lease.metadata?.resourceVersion ?? '');
  return toRecord(lease);
}

function annotationsOf(deployment: DeploymentFacts, next: CooldownStart): Record<string, string> {
  const annotations: Record<string, string> = {
    [DEPLOYMENT_ANNOTATION]: deployment.name,
    [DEPLOYMENT_UID_ANNOTATION]: deployment.uid,
    [CONSECUTIVE_INEFFECTIVE_ANNOTATION]: String(next.consecutiveIneffective),
  };
  if (next.lastAction) annotations[LAST_ACTION_ANNOTATION] = JSON.stringify(next.lastAction);
  if (next.lastAttempt) annotations[LAST_ATTEMPT_ANNOTATION] = JSON.stringify(next.lastAttempt);
  if (next.stopped !== undefined) annotations[INEFFECTIVE_ANNOTATION] = next.stopped;
  if (next.rotation) annotations[ROTATION_ANNOTATION] = JSON.stringify(next.rotation);
  return annotations;
}

/** Reads a cooldown Lease by name: from a watch cache in the service, from the API elsewhere. */
export interface LeaseReader {
  get(name: string): Promise<V1Lease | undefined>;
  /** The API server's answer to our own write, so the next read sees it at once. */
  remember?(lease: V1Lease): void;
  /** Our write lost a race: read what the watch says from now on. */
  forget?(name: string): void;
  /** Every cooldown Lease, from the watch cache; undefined while it cannot answer. */
  list?(): V1Lease[] | undefined;
  /**
   * When this process saw the Lease change to `version` (a watch event, or its own write), by
   * its own clock; undefined when it did not see the change happen (see cooldownEnds).
   */
  observedAt?(name: string, version: string): Date | undefined;
}

/**
 * The CooldownStore as a coordination.k8s.io/v1 Lease per Deployment, all in STATE_NAMESPACE
 * (the service's own namespace, where a namespaced Role grants it Leases and nothing else does).
 * Creating it, or replacing it at the resourceVersion we read, is a compare-and-swap in the API
 * server: of two replicas (or two retries) that race, exactly one succeeds and the other sees 409.
 */
export class LeaseCooldownStore implements CooldownStore {
  private readonly reader: LeaseReader;
  private readonly leases: LeaseRegister;

  constructor(
    private readonly apis: KubeApis,
    private readonly namespace: string,
    reader?: LeaseReader,
  ) {
    this.leases = new LeaseRegister(apis, namespace);
    this.reader = reader ?? { get: (name) => this.readLease(name) };
  }

  /** Reads a Lease of STATE_NAMESPACE from the API server; undefined when there is none. */
  readLease(name: string): Promise<V1Lease | undefined> {
    return this.leases.read(name);
  }

  async read(deployment: DeploymentFacts): Promise<CooldownRecord | undefined> {
    const name = leaseName(targetOf(deployment));
    const lease = await this.reader.get(name);
    if (!lease) return undefined;
    const record = recordFor(lease, deployment);
    const observedAt = this.reader.observedAt?.(name, record.version);
    return observedAt ? { ...record, observedAt } : record;
  }

  async start(
    deployment: DeploymentFacts,
    previous: CooldownRecord | undefined,
    next: CooldownStart,
  ): Promise<boolean> {
    const body = this.leaseBody(deployment, previous, next);
    const what = `taking the cooldown Lease of ${deployment.namespace}/${deployment.name}`;
    const written = await this.leases.swap(body, what);
    // Lost: someone else changed it (or acts): we do not act, and read what the watch says.
    if (!written) this.reader.forget?.(body.metadata!.name!);
    else this.reader.remember?.(written);
    return written !== undefined;
  }

  howToResume(deployment: DeploymentFacts): string {
    return `pod-rebalancer resume ${deployment.namespace}/${deployment.name}`;
  }

  async list(filter: { rotating?: boolean } = {}): Promise<CooldownEntry[]> {
    // The rotation driver looks every few seconds: Leases without a rotation are not parsed.
    const wanted = (lease: V1Lease) =>
      !filter.rotating || lease.metadata?.annotations?.[ROTATION_ANNOTATION] !== undefined;
    const cached = this.reader.list?.();
    if (cached) return cached.flatMap((lease) => (wanted(lease) && entryOf(lease)) || []);
    const fold = () => {
      const entries: CooldownEntry[] = [];
      return {
        add: (lease: V1Lease) => {
          const entry = wanted(lease) && entryOf(lease);
          if (entry) entries.push(entry);
        },
        done: () => entries,
      };
    };
    try {
      return await listPaged(
        (page) =>
          this.apis.coordination.listNamespacedLease({
            namespace: this.namespace,
            labelSelector: COOLDOWN_SELECTOR,
            ...page,
          }),
        fold,
      );
    } catch (error) {
      throw toUpstreamError(error, `listing the cooldown Leases in ${this.namespace}`);
    }
  }

  async remove(entry: CooldownEntry): Promise<boolean> {
    try {
      await this.apis.coordination.deleteNamespacedLease({
        namespace: this.namespace,
        name: leaseName(entry.target),
        // Only the version we judged: a Lease taken meanwhile by a new Deployment stays.
        body: { preconditions: { resourceVersion: entry.record.version } },
      });
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 || status === 404) return false;
      throw toUpstreamError(error, `deleting Lease ${this.namespace}/${leaseName(entry.target)}`);
    }
  }

  /**
   * Clears the stop mark of a Deployment (compare-and-swap on the Lease's resourceVersion).
   * Returns what it found: no Lease, not stopped, cleared, or changed meanwhile (retry).
   */
  async clearStop(target: Target): Promise<'no-lease' | 'not-stopped' | 'cleared' | 'conflict'> {
    const lease = await this.readLease(leaseName(target));
    const annotations = lease?.metadata?.annotations;
    if (!lease || !annotations) return 'no-lease';
    if (annotations[INEFFECTIVE_ANNOTATION] === undefined) return 'not-stopped';
    delete annotations[INEFFECTIVE_ANNOTATION];
    // A person decided to try again: the count of ineffective actions starts over too.
    annotations[CONSECUTIVE_INEFFECTIVE_ANNOTATION] = '0';
    const what = `clearing the stop mark of ${target.namespace}/${target.deployment}`;
    return (await this.leases.swap(lease, what)) ? 'cleared' : 'conflict';
  }

  private leaseBody(
    deployment: DeploymentFacts,
    previous: CooldownRecord | undefined,
    next: CooldownStart,
  ): V1Lease {
    const at = new V1MicroTime(next.startedAt.getTime());
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: leaseName(targetOf(deployment)),
        namespace: this.namespace,
        resourceVersion: previous?.version,
        // No ownerReference: an owner in another namespace is invalid. The sweep deletes
        // the Leases of Deployments that are gone.
        labels: {
          'app.kubernetes.io/managed-by': 'pod-rebalancer',
          [NAMESPACE_LABEL]: deployment.namespace,
          [DEPLOYMENT_LABEL]: deploymentLabelValue(deployment.name),
        },
        annotations: annotationsOf(deployment, next),
      },
      spec: {
        holderIdentity: next.holder,
        acquireTime: at,
        renewTime: at,
        // The API server rejects a duration of 0 (the stop mark has no cooldown): leave it out.
        leaseDurationSeconds: next.durationMs > 0 ? Math.ceil(next.durationMs / 1000) : undefined,
      },
    };
  }
}

function targetOf(deployment: DeploymentFacts): Target {
  return { namespace: deployment.namespace, deployment: deployment.name };
}
