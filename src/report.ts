import type { AlertPolicy } from './core/policy.js';
import type { Outcome, Reason, Stats } from './core/types.js';

/** What became of one chosen pod. */
export type PodResult =
  | 'evicted'
  | 'deleted'
  | 'would-evict'
  | 'would-delete'
  | 'pdb-blocked'
  | 'gone'
  | 'failed'
  | 'not-attempted';

export interface PodReport {
  name: string;
  cpu: number;
  role: 'highest' | 'lowest';
  result: PodResult;
}

/** The result of handling one Deployment. */
export interface TargetReport {
  namespace: string;
  deployment: string;
  outcome: Outcome;
  reason: Reason;
  detail: string;
  stats?: Stats;
  pods?: PodReport[];
  /** The threshold, measure and minimum pods verified against, and where each came from. */
  policy?: AlertPolicy;
  /** replay: whether the rule engine confirms the alert now (not required there). */
  provenance?: string;
  /** A one-by-one rotation after its first step: the pod that follows, and until when. */
  rotation?: { step: number; of: number; next: string; until: string };
  /** Set when a retry may succeed (an upstream was unreachable): the webhook answers 503. */
  retryable?: boolean;
}

/** One entry of the webhook's answer: an alert and what was done about it. */
export interface AlertReport extends Partial<TargetReport> {
  fingerprint: string;
  alertname: string;
  outcome: Outcome;
  reason: Reason;
  detail: string;
}

export interface Report {
  requestId: string;
  results: AlertReport[];
}
