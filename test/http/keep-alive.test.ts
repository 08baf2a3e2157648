import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  type Harness,
  postWebhook,
  seedImbalanced,
  seedImbalancedMany,
  startHarness,
  TOKEN,
} from '../support/harness.js';
import { KeepAliveAuthentication } from '../../src/adapters/connection-pool.js';
import { payload } from './payload.js';

let h: Harness;
afterEach(() => h?.stop());

const post = () => postWebhook(h.service.app, payload());

describe('one keep-alive connection pool towards the Kubernetes API', () => {
  it('when a storm of notifications arrives one after another, then the calls reuse one or two TCP connections instead of opening one each', async () => {
    h = await startHarness();
    seedImbalanced(h);

    expect((await post()).body.results[0]).toMatchObject({ outcome: 'rebalanced' });
    for (let i = 0; i < 30; i++) {
      expect((await post()).body.results[0]).toMatchObject({ reason: 'cooldown' });
    }

    expect(h.kube.requests.length).toBeGreaterThanOrEqual(35);
    expect(h.kube.connections).toBeLessThanOrEqual(2);
  });

  it('when several payloads arrive at once, then the connections stay far fewer than the calls', async () => {
    h = await startHarness();
    seedImbalanced(h);

    await Promise.all(Array.from({ length: 20 }, () => post()));

    expect(h.kube.removals).toHaveLength(2);
    expect(h.kube.requests.length).toBeGreaterThanOrEqual(40);
    expect(h.kube.connections).toBeLessThan(h.kube.requests.length / 2);
  });

  it('when a hundred Deployments are acted on at once over the pooled connections, then no answer is lost as a "Premature close" (chunked answers on reused sockets)', async () => {
    // A hundred actions at once: the cluster-wide budget (20/1h by default) is another test's.
    h = await startHarness({ ACTION_BUDGET: 'off' });
    const alerts = seedImbalancedMany(h, 100);

    const res = await request(h.service.app)
      .post('/webhook')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send(payload(alerts));

    const reasons = res.body.results.map((r: { reason: string }) => r.reason);
    expect(reasons.filter((r: string) => r !== 'imbalanced')).toEqual([]);
    expect(h.kube.removals).toHaveLength(200);
    expect(h.kube.connections).toBeLessThan(h.kube.requests.length / 4);
  });
});

describe('the pooled agent and the kubeconfig TLS settings', () => {
  // The kubeconfig reads its certificate files anew for every request: equal bytes, new buffers.
  const agentWith = (cert: string, Agent: typeof http.Agent = https.Agent) =>
    new Agent({
      ca: [Buffer.from('ca')],
      cert: Buffer.from(cert),
      key: Buffer.from(`key of ${cert}`),
      rejectUnauthorized: true,
    } as https.AgentOptions);

  it('when every request brings equal TLS settings in new buffers, then every request gets the one pooled agent', () => {
    const auth = new KeepAliveAuthentication(new KubeConfig());

    const agents = [1, 2, 3].map(() => auth.agentLike(agentWith('client-cert')));

    expect(new Set(agents).size).toBe(1);
    expect(agents[0]).toBeInstanceOf(https.Agent);
    auth.close();
  });

  it('when the client certificate is rotated, or the scheme changes, then a new pool is started', () => {
    const auth = new KeepAliveAuthentication(new KubeConfig());
    const before = auth.agentLike(agentWith('client-cert'));

    const rotated = auth.agentLike(agentWith('rotated-cert'));
    const plain = auth.agentLike(agentWith('rotated-cert', http.Agent));

    expect(rotated).not.toBe(before);
    expect(rotated).toBeInstanceOf(https.Agent);
    expect(plain).not.toBe(rotated);
    expect(plain).not.toBeInstanceOf(https.Agent);
    expect(auth.agentLike(agentWith('rotated-cert', http.Agent))).toBe(plain);
    auth.close();
  });
});
