import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Service } from '../../src/service.js';
import { type Harness, postWebhook, seedImbalanced, startHarness } from '../support/harness.js';
import { payload } from './payload.js';

const MINUTE = 60_000;

const ready = async (service: Service) =>
  (await request(service.app).get('/readyz')).status === 200;

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

let h: Harness;
afterEach(() => h?.stop());

/** Two clocks that move together, `skewMs` apart (two nodes, one badly synchronised). */
function skewedClocks(skewMs: number) {
  let now = Date.now();
  return {
    a: { now: () => new Date(now) },
    b: { now: () => new Date(now + skewMs) },
    advance: (ms: number) => (now += ms),
  };
}

describe('clock skew between replicas', () => {
  it('when replica b runs 10 minutes ahead of replica a, then the cooldown a started still holds on b for its whole 15 minutes', async () => {
    const clocks = skewedClocks(10 * MINUTE);
    h = await startHarness({ COOLDOWN: '15m' }, { clock: clocks.a, watchCaches: true });
    const b = h.replica('replica-b', clocks.b);
    seedImbalanced(h);
    await until(async () => (await ready(h.service)) && (await ready(b)), 'both replicas synced');

    expect((await postWebhook(h.service.app, payload())).body.results[0]).toMatchObject({
      outcome: 'rebalanced',
    });
    // The replacements are as unevenly loaded: only the cooldown stops replica b.
    seedImbalanced(h);
    // b's Lease watch brings a's write: b times it by its own clock.
    await until(
      async () =>
        (await postWebhook(b.app, payload())).body.results[0].detail?.startsWith('in cooldown'),
      "b's watch brought the Lease",
    );

    // 6 minutes later: by a's clock the cooldown has 9 minutes to go; by b's, a's start plus
    // 15 minutes is already past.
    clocks.advance(6 * MINUTE);
    const late = await postWebhook(b.app, payload());

    expect(late.body.results[0]).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(h.kube.removals).toHaveLength(2);

    // Once the whole cooldown has passed (by any clock), b acts.
    clocks.advance(10 * MINUTE);
    expect((await postWebhook(b.app, payload())).body.results[0]).toMatchObject({
      outcome: 'rebalanced',
    });
  });
});
