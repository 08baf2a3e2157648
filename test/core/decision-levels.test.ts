import { describe, expect, it } from '@jest/globals';
import type { TargetReport } from '../../src/report.js';
import { quietCooldownRepeats } from '../../src/stages/record.js';

const UNTIL_1 = 'in cooldown until 2026-12-07T10:15:00.000Z';
const UNTIL_2 = 'in cooldown until 2026-12-07T10:45:00.000Z';

function report(overrides: Partial<TargetReport>): TargetReport {
  return {
    namespace: 'payments',
    deployment: 'api',
    outcome: 'skipped',
    reason: 'cooldown',
    detail: UNTIL_1,
    ...overrides,
  };
}

describe('quietCooldownRepeats: the level of each decision line', () => {
  it.each([
    [
      'the repeats of one cooldown skip go to debug',
      [report({}), report({}), report({})],
      ['info', 'debug', 'debug'],
    ],
    [
      'a new cooldown (another end) is said at info again',
      [report({}), report({}), report({ detail: UNTIL_2 }), report({ detail: UNTIL_2 })],
      ['info', 'debug', 'info', 'debug'],
    ],
    [
      'anything else decided for the Deployment in between makes the next skip info again',
      [
        report({}),
        report({ reason: 'rollout-in-progress', detail: 'rolling out' }),
        report({ reason: 'rollout-in-progress', detail: 'rolling out' }),
        report({}),
      ],
      ['info', 'info', 'info', 'info'],
    ],
    [
      'each Deployment has its own first skip',
      [report({}), report({ deployment: 'web' }), report({}), report({ deployment: 'web' })],
      ['info', 'info', 'debug', 'debug'],
    ],
    [
      'a failure in between makes the next skip info again',
      [
        report({}),
        report({ outcome: 'failed', reason: 'kubernetes-unavailable', detail: 'timeout' }),
        report({}),
      ],
      ['info', 'warn', 'info'],
    ],
    [
      'failures stay at warn, actions at info',
      [
        report({ outcome: 'failed', reason: 'kubernetes-unavailable', detail: 'timeout' }),
        report({ outcome: 'failed', reason: 'kubernetes-unavailable', detail: 'timeout' }),
        report({ outcome: 'rebalanced', reason: 'imbalanced', detail: 'above' }),
        report({ outcome: 'rebalanced', reason: 'imbalanced', detail: 'above' }),
      ],
      ['warn', 'warn', 'info', 'info'],
    ],
  ])('when %s', (_name, reports, levels) => {
    const chooser = quietCooldownRepeats();
    expect(reports.map((r) => chooser.levelOf(r))).toEqual(levels);
  });
});
