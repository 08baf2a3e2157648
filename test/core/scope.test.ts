import { describe, expect, it } from '@jest/globals';
import { gateNamespace, gateScope, UNSCOPED, type Scope } from '../../src/core/scope.js';
import { buildDeploymentFacts } from '../support/builders.js';

const DEFAULT: Scope = { ...UNSCOPED, stateNamespace: 'pod-rebalancer' };
const scope = (overrides: Partial<Scope>): Scope => ({ ...DEFAULT, ...overrides });

describe('gateNamespace', () => {
  it.each<[string, Scope, string, RegExp | undefined]>([
    ['the default scope, an ordinary namespace', DEFAULT, 'payments', undefined],
    [
      'the default scope, kube-system',
      DEFAULT,
      'kube-system',
      /kube-system is a kube-\* namespace/,
    ],
    ['the default scope, kube-node-lease', DEFAULT, 'kube-node-lease', /a kube-\* namespace/],
    ['the default scope, STATE_NAMESPACE', DEFAULT, 'pod-rebalancer', /is STATE_NAMESPACE/],
    [
      'EXCLUDE_NAMESPACES=monitoring, kube-system (added to, never replaced)',
      scope({ excludeNamespaces: new Set(['monitoring']) }),
      'kube-system',
      /a kube-\* namespace/,
    ],
    [
      'EXCLUDE_NAMESPACES=monitoring, monitoring',
      scope({ excludeNamespaces: new Set(['monitoring']) }),
      'monitoring',
      /monitoring is in EXCLUDE_NAMESPACES/,
    ],
    ['a namespace only starting like kube (kubeflow)', DEFAULT, 'kubeflow', undefined],
    [
      'NAMESPACES lists it',
      scope({ namespaces: new Set(['payments', 'shop']) }),
      'shop',
      undefined,
    ],
    [
      'NAMESPACES does not list it',
      scope({ namespaces: new Set(['payments']) }),
      'shop',
      /shop is not in NAMESPACES/,
    ],
    [
      'listed in NAMESPACES and in EXCLUDE_NAMESPACES (exclusion wins)',
      scope({ namespaces: new Set(['payments']), excludeNamespaces: new Set(['payments']) }),
      'payments',
      /payments is in EXCLUDE_NAMESPACES/,
    ],
    ['nothing else excluded, kube-system still is', UNSCOPED, 'kube-system', /a kube-\* namespace/],
  ])('when %s, then %s', (_name, s, namespace, detail) => {
    const result = gateNamespace(s, namespace);

    if (detail === undefined) expect(result).toBeUndefined();
    else expect(result).toEqual({ reason: 'out-of-scope', detail: expect.stringMatching(detail) });
  });
});

describe('gateScope', () => {
  it.each<[string, Scope, Parameters<typeof buildDeploymentFacts>[0], RegExp | undefined]>([
    ['opt-in not required, no annotation', DEFAULT, {}, undefined],
    [
      'opt-in required, annotated "true"',
      scope({ requireOptIn: true }),
      { optedIn: true },
      undefined,
    ],
    [
      'opt-in required, not annotated',
      scope({ requireOptIn: true }),
      { optedIn: false },
      /REQUIRE_OPT_IN is true/,
    ],
    [
      'template priorityClassName system-cluster-critical',
      DEFAULT,
      { priorityClassName: 'system-cluster-critical' },
      /system-critical \(priorityClassName system-cluster-critical\)/,
    ],
    [
      'template priorityClassName system-node-critical',
      DEFAULT,
      { priorityClassName: 'system-node-critical' },
      /system-node-critical/,
    ],
    [
      'template priority 2000000000',
      DEFAULT,
      { priority: 2_000_000_000 },
      /priority 2000000000 >= 2000000000/,
    ],
    ['template priority just below', DEFAULT, { priority: 1_999_999_999 }, undefined],
    [
      'a user priority class',
      DEFAULT,
      { priorityClassName: 'high-priority', priority: 1_000_000 },
      undefined,
    ],
    [
      'opt-in required and not given, and system-critical (opt-in is named first)',
      scope({ requireOptIn: true }),
      { priorityClassName: 'system-node-critical' },
      /REQUIRE_OPT_IN/,
    ],
  ])('when %s, then %s', (_name, s, facts, detail) => {
    const result = gateScope(s, buildDeploymentFacts(facts));

    if (detail === undefined) expect(result).toBeUndefined();
    else expect(result).toEqual({ reason: 'out-of-scope', detail: expect.stringMatching(detail) });
  });
});
