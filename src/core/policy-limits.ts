/**
 * POLICY_LIMITS: bounds the operator sets on what an alert rule may ask for, for clusters where
 * teams write their own rules. A rule that asks for less (a threshold so low that any spread
 * acts, two pods) is `invalid-policy`, like a rule whose policy does not parse. Pure.
 */
import type { GateResult } from './decide.js';
import type { AlertPolicy } from './policy.js';

/** The policy values a limit may bound, by the name the annotation gives them. */
const BOUNDED = {
  threshold: (policy: AlertPolicy) => policy.threshold,
  min_pods: (policy: AlertPolicy) => policy.minPods,
  // A share (0.1 is 10%): a rule asking for 0 would switch the predicted-improvement gate off.
  min_improvement: (policy: AlertPolicy) => policy.minImprovement,
} as const;

export type BoundedName = keyof typeof BOUNDED;

/** One bound: `threshold>=0.05` is { name: 'threshold', op: '>=', value: 0.05 }. */
export interface PolicyLimit {
  name: BoundedName;
  op: '>=' | '<=';
  value: number;
}

const LIMIT = /^([a-z_]+)\s*(>=|<=)\s*(\S+)$/;

/** Parses `threshold>=0.05,min_pods>=3`; throws an Error saying what is expected. */
export function parsePolicyLimits(text: string): PolicyLimit[] {
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new Error('expected bounds such as threshold>=0.05,min_pods>=3');
  return parts.map((part) => {
    const match = LIMIT.exec(part);
    const value = Number(match?.[3]);
    if (!match || !(match[1]! in BOUNDED) || !Number.isFinite(value)) {
      throw new Error(
        `expected NAME>=NUMBER or NAME<=NUMBER, comma-separated, NAME one of ${Object.keys(BOUNDED).join(', ')} (bad: "${part}")`,
      );
    }
    return { name: match[1] as BoundedName, op: match[2] as PolicyLimit['op'], value };
  });
}

function within(actual: number, limit: PolicyLimit): boolean {
  return limit.op === '>=' ? actual >= limit.value : actual <= limit.value;
}

/** The first bound the policy crosses, as `invalid-policy` naming it; undefined within all. */
export function gatePolicyLimits(policy: AlertPolicy, limits: readonly PolicyLimit[]): GateResult {
  for (const limit of limits) {
    const actual = BOUNDED[limit.name](policy);
    if (!within(actual, limit)) {
      return {
        reason: 'invalid-policy',
        detail: `the alert rule asks for ${limit.name} ${actual}, outside POLICY_LIMITS ${limit.name}${limit.op}${limit.value}`,
      };
    }
  }
  return undefined;
}
