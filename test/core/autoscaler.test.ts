import { describe, expect, it } from '@jest/globals';
import { toAutoscalerFacts } from '../../src/adapters/autoscaler-cache.js';
import { gateScaling, type AutoscalerFacts } from '../../src/core/autoscaler.js';
import { buildDeploymentFacts } from '../support/builders.js';

const NOW = new Date('2026-12-01T12:00:00.000Z');
const MINUTE = 60_000;
const COOLDOWN = { now: NOW, cooldownMs: 15 * MINUTE };
const ago = (ms: number) => new Date(NOW.getTime() - ms);

function buildAutoscaler(overrides: Partial<AutoscalerFacts> = {}): AutoscalerFacts {
  return {
    namespace: 'payments',
    name: 'api-hpa',
    target: { kind: 'Deployment', name: 'api' },
    desiredReplicas: 5,
    currentReplicas: 5,
    lastScaleTime: ago(24 * 60 * MINUTE),
    ...overrides,
  };
}

describe('gateScaling', () => {
  const api = buildDeploymentFacts({ namespace: 'payments', name: 'api' });

  it.each<[string, Partial<AutoscalerFacts>, RegExp]>([
    [
      'it wants more replicas than run',
      { desiredReplicas: 7 },
      /is scaling \(7 desired, 5 current/,
    ],
    [
      'it wants fewer replicas than run',
      { desiredReplicas: 3 },
      /is scaling \(3 desired, 5 current/,
    ],
    [
      'it scaled 14m59s ago',
      { lastScaleTime: ago(15 * MINUTE - 1000) },
      /scaled the Deployment at 2026-12-01T11:45:01.000Z, within COOLDOWN 15m/,
    ],
    ['its clock runs ahead of ours', { lastScaleTime: ago(-MINUTE) }, /within COOLDOWN/],
  ])('when an HPA targeting the Deployment says %s, then scaling', (_name, overrides, detail) => {
    const gate = gateScaling([buildAutoscaler(overrides)], api, COOLDOWN);

    expect(gate?.reason).toBe('scaling');
    expect(gate?.detail).toMatch(/^HorizontalPodAutoscaler api-hpa /);
    expect(gate?.detail).toMatch(detail);
  });

  it.each<[string, Partial<AutoscalerFacts>]>([
    ['it is steady and scaled a day ago', {}],
    ['it scaled exactly COOLDOWN ago', { lastScaleTime: ago(15 * MINUTE) }],
    ['it never scaled', { lastScaleTime: undefined }],
    [
      'it scales another Deployment',
      { desiredReplicas: 9, target: { kind: 'Deployment', name: 'web' } },
    ],
    [
      'it scales a StatefulSet of the same name',
      { desiredReplicas: 9, target: { kind: 'StatefulSet', name: 'api' } },
    ],
    ['it lives in another namespace', { desiredReplicas: 9, namespace: 'shop' }],
  ])('when %s, then it lets the action through', (_name, overrides) => {
    expect(gateScaling([buildAutoscaler(overrides)], api, COOLDOWN)).toBeUndefined();
  });

  it('when one of several HPAs is moving the Deployment, then scaling names that one', () => {
    const others = buildAutoscaler({
      name: 'web-hpa',
      target: { kind: 'Deployment', name: 'web' },
    });
    const moving = buildAutoscaler({ name: 'api-keda', desiredReplicas: 8 });

    expect(gateScaling([others, moving], api, COOLDOWN)?.detail).toMatch(
      /^HorizontalPodAutoscaler api-keda /,
    );
  });
});

describe('toAutoscalerFacts', () => {
  it('when the API server omits currentReplicas (it is 0) and the time comes as a string from a watch, then 0 and a Date', () => {
    const facts = toAutoscalerFacts({
      metadata: { namespace: 'payments', name: 'api-hpa' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' },
        maxReplicas: 5,
      },
      status: { desiredReplicas: 2, lastScaleTime: '2026-12-01T11:50:00Z' as unknown as Date },
    });

    expect(facts).toEqual({
      namespace: 'payments',
      name: 'api-hpa',
      target: { kind: 'Deployment', name: 'api' },
      desiredReplicas: 2,
      currentReplicas: 0,
      lastScaleTime: new Date('2026-12-01T11:50:00Z'),
    });
  });
});
