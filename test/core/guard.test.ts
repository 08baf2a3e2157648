import { describe, expect, it } from '@jest/globals';
import { formatSeries, guardGate, guardsFor, type Guard } from '../../src/core/guard.js';
import {
  createPrometheusDriver,
  rejectedExpression,
  toGuardAnswer,
} from '../../src/adapters/prometheus.js';
import { FakePrometheus } from '../support/fake-prometheus.js';
import { onceEventName } from '../../src/stages/events.js';

const GLOBAL: Guard = { kind: 'global', name: 'GUARD_QUERY', expr: 'up == 0' };

describe('guardsFor', () => {
  it.each([
    ['no GUARD_QUERY and no annotation', undefined, {}, []],
    ['GUARD_QUERY only', 'up == 0', {}, ['global']],
    ['the annotation only', undefined, { pod_rebalancer_guard: 'x > 1' }, ['rule']],
    ['both, global first', 'up == 0', { pod_rebalancer_guard: 'x > 1' }, ['global', 'rule']],
  ])(
    'when %s, then exactly those guards apply, global first',
    (_when, global, annotations, kinds) => {
      const guards = guardsFor(global, annotations);

      expect(Array.isArray(guards) && guards.map((g) => g.kind)).toEqual(kinds);
    },
  );

  it('when the annotation is present but blank, then invalid-policy, never "no guard"', () => {
    expect(guardsFor(undefined, { pod_rebalancer_guard: ' \n' })).toEqual({
      reason: 'invalid-policy',
      detail: "the alert's pod_rebalancer_guard annotation is empty",
    });
  });
});

describe('guardGate', () => {
  it('when the guard returns nothing, then it lets the action through', () => {
    expect(guardGate(GLOBAL, { count: 0 })).toBeUndefined();
  });

  it('when it returns series, then guarded, naming the guard and how many series, never which', () => {
    const gate = guardGate(GLOBAL, { count: 2 });

    expect(gate).toEqual({
      reason: 'guarded',
      detail: 'GUARD_QUERY holds: guard returned 2 series (expression: up == 0)',
    });
  });

  it('when Prometheus refused the expression, then invalid-policy with its message', () => {
    expect(guardGate(GLOBAL, { rejected: '1:4: parse error: unexpected' })).toEqual({
      reason: 'invalid-policy',
      detail:
        'GUARD_QUERY was rejected by Prometheus: 1:4: parse error: unexpected (expression: up == 0)',
    });
  });
});

describe('formatSeries', () => {
  it('prints a series without a name as PromQL does, labels sorted and quoted', () => {
    expect(formatSeries({ labels: { topic: 'a"b', consumergroup: 'billing' }, value: 12.5 })).toBe(
      '{consumergroup="billing", topic="a\\"b"} 12.5',
    );
  });
});

describe('the Prometheus adapter at the guard boundary', () => {
  it('takes a 400 bad_data as the expression refused, and nothing else', async () => {
    // The rejections come from the real client against a Prometheus-like server, so this fails
    // if the transport's error path changes shape under the guard check.
    const prom = await new FakePrometheus().start();
    const rejectionOf = async (expr: string) => {
      const driver = createPrometheusDriver({ url: prom.url, timeoutMs: 2000 });
      return driver.instantQuery(expr).then(
        () => undefined,
        (reason: unknown) => reason,
      );
    };
    try {
      expect(rejectedExpression(await rejectionOf('sum(rate(x[5m])'))).toMatch(
        /parse error: unexpected end of input inside parenthesis/,
      );
      prom.fail({ status: 503 });
      expect(rejectedExpression(await rejectionOf('up == 0'))).toBeUndefined();
      prom.fail({ status: 400, rawBody: 'no org id' });
      expect(rejectedExpression(await rejectionOf('up == 0'))).toBeUndefined();
    } finally {
      await prom.stop();
    }
    expect(rejectedExpression(await rejectionOf('up == 0'))).toBeUndefined();
  });

  it('refuses an answer that is not a set of series (a scalar cannot be a guard)', () => {
    expect(toGuardAnswer('scalar', [])).toEqual({
      rejected: 'a guard must return an instant vector, this returns a scalar',
    });
  });

  it('reads the counted answer as a number of series: none when empty, the count otherwise', () => {
    expect(toGuardAnswer('vector', [])).toEqual({ count: 0 });
    expect(toGuardAnswer('vector', [{ metric: { labels: {} }, value: { value: '3' } }])).toEqual({
      count: 3,
    });
  });
});

describe('onceEventName', () => {
  const deployment = { name: 'api', uid: '6F1C-uid' };
  const WINDOW = 15 * 60_000;

  it('is the same within one window and differs in the next', () => {
    const at = (ms: number) => onceEventName(deployment, 'RebalanceGuarded', WINDOW, new Date(ms));

    expect(at(WINDOW * 10)).toBe(at(WINDOW * 11 - 1));
    expect(at(WINDOW * 11)).not.toBe(at(WINDOW * 11 - 1));
  });

  it('is a valid Kubernetes name (DNS subdomain, at most 253) even for the longest Deployment name', () => {
    const long = { name: `${'a'.repeat(179)}.b`, uid: '0a1b2c3d-0000-4000-8000-123456789abc' };
    const name = onceEventName(long, 'RebalanceGuarded', WINDOW, new Date());

    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
  });
});
