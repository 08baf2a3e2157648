import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import winston from 'winston';
import { createLogger } from '../../src/adapters/logger.js';
import { InMemoryActionBudgetStore, InMemoryCluster } from '../../src/adapters/memory.js';
import { UpstreamError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics.js';
import type { ActionBudgetStore } from '../../src/ports.js';
import { takeActionSlot } from '../../src/stages/budget.js';
import { buildDeploymentFacts } from '../support/builders.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const BUDGET = { limit: 2, windowMs: 3_600_000, text: '2/1h' };

function depsWith(actionBudget: ActionBudgetStore) {
  return {
    actionBudget,
    cluster: new InMemoryCluster(),
    telemetry: createMetrics(new Registry()),
    logger: createLogger('error', new winston.transports.Console({ silent: true })),
    identity: 'replica-a',
  };
}

describe('takeActionSlot', () => {
  it('when slots are left, then it takes one; when none, then budget-exhausted and one Event per window', async () => {
    const deps = depsWith(new InMemoryActionBudgetStore());
    const take = (name: string) =>
      takeActionSlot(buildDeploymentFacts({ name }), BUDGET, { now: NOW, dryRun: false }, deps);

    expect((await take('a')).taken).toBe(true);
    expect((await take('b')).taken).toBe(true);
    const refused = await take('c');
    await take('c');

    expect(refused).toMatchObject({ taken: false, gate: { reason: 'budget-exhausted' } });
    expect(deps.cluster.events.map((e) => e.reason)).toEqual(['ActionBudgetExhausted']);
  });

  it('when a slot is handed back, then the next action fits again', async () => {
    const deps = depsWith(new InMemoryActionBudgetStore());
    const take = () =>
      takeActionSlot(buildDeploymentFacts(), BUDGET, { now: NOW, dryRun: true }, deps);
    const first = await take();
    await take();

    expect(first.taken).toBe(true);
    if (first.taken) await first.release();

    expect((await take()).taken).toBe(true);
  });

  it('when every compare-and-swap loses, then a retryable error (503), never an action', async () => {
    const alwaysLosing: ActionBudgetStore = {
      read: async () => ({ version: '1', entries: [] }),
      write: async () => false,
    };

    await expect(
      takeActionSlot(
        buildDeploymentFacts(),
        BUDGET,
        { now: NOW, dryRun: false },
        depsWith(alwaysLosing),
      ),
    ).rejects.toMatchObject({ constructor: UpstreamError, retryable: true });
  });

  it('when ACTION_BUDGET is off, then nothing is read or written', async () => {
    const untouchable: ActionBudgetStore = {
      read: () => Promise.reject(new Error('read')),
      write: () => Promise.reject(new Error('write')),
    };

    const slot = await takeActionSlot(
      buildDeploymentFacts(),
      undefined,
      { now: NOW, dryRun: false },
      depsWith(untouchable),
    );

    expect(slot.taken).toBe(true);
  });
});
