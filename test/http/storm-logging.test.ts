import { afterEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

/** Alertmanager sends the same notification `times` times, one after another. */
async function notify(times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const res = await postWebhook(h.service.app, payload());
    expect(res.status).toBe(200);
  }
}

const decisions = () =>
  h.logs.entries
    .filter((e) => e.message === 'decision')
    .map((e) => ({ level: e.level, outcome: e.outcome, reason: e.reason }));

async function cooldownSkipsCounted(): Promise<string | undefined> {
  const metrics = (await request(h.service.app).get('/metrics')).text;
  return /pod_rebalancer_alerts_total\{outcome="skipped",reason="cooldown"\} (\d+)/.exec(
    metrics,
  )?.[1];
}

describe('an alert storm inside the cooldown (Alertmanager repeating a firing alert)', () => {
  it('when the same alert repeats inside the cooldown, then the action and the first skip are logged at info, the repeats at debug, and every skip is counted', async () => {
    h = await startHarness({ LOG_LEVEL: 'debug' });
    seedImbalanced(h);

    await notify(4);

    expect(decisions()).toEqual([
      { level: 'info', outcome: 'rebalanced', reason: 'imbalanced' },
      { level: 'info', outcome: 'skipped', reason: 'cooldown' },
      { level: 'debug', outcome: 'skipped', reason: 'cooldown' },
      { level: 'debug', outcome: 'skipped', reason: 'cooldown' },
    ]);
    expect(await cooldownSkipsCounted()).toBe('3');
  });

  it('when LOG_LEVEL is info, then a storm of repeats writes one line for its first skip and none for the rest', async () => {
    h = await startHarness();
    seedImbalanced(h);

    await notify(5);

    expect(decisions()).toEqual([
      { level: 'info', outcome: 'rebalanced', reason: 'imbalanced' },
      { level: 'info', outcome: 'skipped', reason: 'cooldown' },
    ]);
    expect(await cooldownSkipsCounted()).toBe('4');
  });
});
