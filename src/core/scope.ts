/**
 * What pod-rebalancer may touch at all. Each rule is a small predicate returning why a
 * Deployment is out of scope, naming the rule; the first that answers wins. The namespace
 * rules need only the alert's labels, so they run before any API call; the others need the
 * Deployment object. All of them run before any Prometheus query and any write.
 */
import type { GateResult } from './decide.js';
import type { DeploymentFacts, PodFacts } from './types.js';

/** The scope settings: NAMESPACES, EXCLUDE_NAMESPACES, REQUIRE_OPT_IN. */
export interface Scope {
  /** Only these namespaces; undefined means all. */
  namespaces: ReadonlySet<string> | undefined;
  /** Never these, in addition to the service's own namespace and every kube-* namespace. */
  excludeNamespaces: ReadonlySet<string>;
  requireOptIn: boolean;
  /** STATE_NAMESPACE: the service's own namespace, always out of scope. */
  stateNamespace?: string;
}

/**
 * Priority from which pods are system-critical. Kubernetes reserves values above 1000000000 for
 * its two built-in classes, system-cluster-critical (2000000000) and system-node-critical
 * (2000001000): a user's PriorityClass cannot reach this.
 */
export const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;
export const SYSTEM_CRITICAL_CLASSES: ReadonlySet<string> = new Set([
  'system-cluster-critical',
  'system-node-critical',
]);

const outOfScope = (detail: string): GateResult => ({ reason: 'out-of-scope', detail });

type NamespaceRule = (scope: Scope, namespace: string) => GateResult;
type DeploymentRule = (scope: Scope, deployment: DeploymentFacts) => GateResult;

const inNamespaces: NamespaceRule = (scope, namespace) =>
  scope.namespaces && !scope.namespaces.has(namespace)
    ? outOfScope(`namespace ${namespace} is not in NAMESPACES`)
    : undefined;

/**
 * Always out of scope, whatever EXCLUDE_NAMESPACES says (it adds to these, it cannot replace
 * them): the control plane's kube-* namespaces and the service's own.
 */
const notReserved: NamespaceRule = (scope, namespace) => {
  if (namespace.startsWith('kube-')) {
    return outOfScope(`namespace ${namespace} is a kube-* namespace (always out of scope)`);
  }
  if (namespace === scope.stateNamespace) {
    return outOfScope(`namespace ${namespace} is STATE_NAMESPACE, the service's own`);
  }
  return undefined;
};

const notExcluded: NamespaceRule = (scope, namespace) =>
  scope.excludeNamespaces.has(namespace)
    ? outOfScope(`namespace ${namespace} is in EXCLUDE_NAMESPACES`)
    : undefined;

const optedInWhenRequired: DeploymentRule = (scope, deployment) =>
  scope.requireOptIn && !deployment.optedIn
    ? outOfScope(
        'REQUIRE_OPT_IN is true and the Deployment is not annotated pod-rebalancer.io/enabled: "true"',
      )
    : undefined;

/** What makes a priority class or priority system-critical, or undefined. */
function systemCritical(facts: {
  priorityClassName?: string;
  priority?: number;
}): string | undefined {
  const { priorityClassName, priority } = facts;
  if (priorityClassName !== undefined && SYSTEM_CRITICAL_CLASSES.has(priorityClassName)) {
    return `priorityClassName ${priorityClassName}`;
  }
  if (priority !== undefined && priority >= SYSTEM_CRITICAL_PRIORITY) {
    return `priority ${priority} >= ${SYSTEM_CRITICAL_PRIORITY}`;
  }
  return undefined;
}

const notSystemCritical: DeploymentRule = (_scope, deployment) => {
  const why = systemCritical(deployment);
  return why ? outOfScope(`its pods are system-critical (${why})`) : undefined;
};

const NAMESPACE_RULES: readonly NamespaceRule[] = [notReserved, notExcluded, inNamespaces];
const DEPLOYMENT_RULES: readonly DeploymentRule[] = [optedInWhenRequired, notSystemCritical];

function firstOf<T>(
  rules: readonly ((scope: Scope, subject: T) => GateResult)[],
  scope: Scope,
  subject: T,
): GateResult {
  for (const rule of rules) {
    const result = rule(scope, subject);
    if (result) return result;
  }
  return undefined;
}

/**
 * The scope rule that needs the pods: none of them system-critical, judged from each pod's own
 * `spec.priority` (admission sets it from the class, whatever the template says). The pods are
 * listed fresh before the CPU query, so this still runs before any query and any write.
 */
export function gatePods(pods: readonly PodFacts[]): GateResult {
  for (const pod of pods) {
    const why = systemCritical(pod);
    if (why) return outOfScope(`its pod ${pod.name} is system-critical (${why}, in its own spec)`);
  }
  return undefined;
}

/** The scope rules that need only the namespace: kube-* and STATE_NAMESPACE, EXCLUDE_NAMESPACES, then NAMESPACES. */
export function gateNamespace(scope: Scope, namespace: string): GateResult {
  return firstOf(NAMESPACE_RULES, scope, namespace);
}

/** The scope rules that need the Deployment: REQUIRE_OPT_IN, then system-critical pods. */
export function gateScope(scope: Scope, deployment: DeploymentFacts): GateResult {
  return firstOf(DEPLOYMENT_RULES, scope, deployment);
}

/** Everything in scope: no namespace filter, nothing excluded, no opt-in needed. */
export const UNSCOPED: Scope = Object.freeze({
  namespaces: undefined,
  excludeNamespaces: new Set<string>(),
  requireOptIn: false,
});
