import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { AlertmanagerConfig } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/AlertmanagerConfig';
import { SETTINGS } from '../../src/config.js';
import { parseDuration } from '../../src/core/duration.js';
import { AMTOOL, expectSuccess, readYaml, repoRoot, runTool } from './tools.js';

const PLAIN = 'deploy/alertmanager/alertmanager.yml';
const OPERATOR = 'deploy/alertmanager/alertmanager-config.yaml';
const WEBHOOK_URL = 'http://pod-rebalancer.pod-rebalancer.svc:8080/webhook';

interface PlainRoute {
  receiver: string;
  matchers?: string[];
  group_by?: string[];
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  routes?: PlainRoute[];
}

interface PlainConfig {
  route: PlainRoute;
  receivers: {
    name: string;
    webhook_configs?: {
      url: string;
      send_resolved?: boolean;
      http_config?: { authorization?: { type?: string; credentials_file?: string } };
    }[];
  }[];
}

interface OperatorConfig {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    route: {
      receiver: string;
      matchers: { name: string; matchType?: string; value: string }[];
      groupBy: string[];
      groupWait: string;
      groupInterval: string;
      repeatInterval: string;
    };
    receivers: {
      name: string;
      webhookConfigs: {
        url: string;
        sendResolved: boolean;
        httpConfig: {
          authorization: { type: string; credentials: { name: string; key: string } };
        };
      }[];
    }[];
  };
}

interface DeploymentObject {
  spec: {
    template: {
      spec: {
        volumes: { name: string; secret?: { secretName: string; items?: { key: string }[] } }[];
      };
    };
  };
}

/** The receiver amtool says an alert with these labels is routed to. */
function routedTo(labels: string[]): string {
  const run = runTool(AMTOOL, ['config', 'routes', 'test', `--config.file=${PLAIN}`, ...labels]);
  expectSuccess(run);
  return run.stdout.trim();
}

function podRebalancerRoute(): PlainRoute {
  const route = readYaml<PlainConfig>(PLAIN).route.routes?.find(
    (r) => r.receiver === 'pod-rebalancer',
  );
  if (!route) throw new Error(`${PLAIN} has no route to the pod-rebalancer receiver`);
  return route;
}

function minutes(duration: string | undefined): number {
  const ms = parseDuration(duration ?? '');
  if (ms === undefined) throw new Error(`not a duration: ${duration}`);
  return ms / 60_000;
}

const cooldownMinutes = minutes(SETTINGS.COOLDOWN.default);

describe(PLAIN, () => {
  it('passes amtool check-config', () => {
    expectSuccess(runTool(AMTOOL, ['check-config', PLAIN]));
  });

  it('routes DeploymentCPUImbalance, from any namespace, to the pod-rebalancer receiver', () => {
    expect(
      routedTo(['alertname=DeploymentCPUImbalance', 'namespace=payments', 'deployment=api']),
    ).toBe('pod-rebalancer');
    expect(routedTo(['alertname=DeploymentCPUImbalance', 'namespace=shop', 'deployment=web'])).toBe(
      'pod-rebalancer',
    );
  });

  it("keeps every other alert, the service's own alerts included, away from the webhook", () => {
    expect(routedTo(['alertname=PodRebalancerWebhookFailing', 'namespace=pod-rebalancer'])).toBe(
      'default',
    );
    expect(routedTo(['alertname=KubePodCrashLooping', 'namespace=payments'])).toBe('default');
  });

  it('posts to the service with a Bearer token from a file, resolved alerts included', () => {
    const receiver = readYaml<PlainConfig>(PLAIN).receivers.find(
      (r) => r.name === 'pod-rebalancer',
    );

    expect(receiver?.webhook_configs).toEqual([
      {
        url: WEBHOOK_URL,
        send_resolved: true,
        http_config: {
          authorization: { type: 'Bearer', credentials_file: expect.stringMatching(/^\/.+/) },
        },
      },
    ]);
  });

  it("groups per Deployment, the unit of the service's cooldown", () => {
    expect(podRebalancerRoute().group_by).toEqual(['namespace', 'deployment']);
  });

  it('sends changes within the cooldown, and repeats only after the cooldown is over', () => {
    const route = podRebalancerRoute();

    expect(minutes(route.group_wait)).toBeLessThan(cooldownMinutes);
    expect(minutes(route.group_interval)).toBeLessThan(cooldownMinutes);
    expect(minutes(route.repeat_interval)).toBeGreaterThan(cooldownMinutes);
  });
});

describe(OPERATOR, () => {
  const object = readYaml<OperatorConfig>(OPERATOR);

  it('is a valid prometheus-operator AlertmanagerConfig', () => {
    expect(object.apiVersion).toBe('monitoring.coreos.com/v1alpha1');
    expect(object.kind).toBe('AlertmanagerConfig');
    expect(() =>
      new AlertmanagerConfig(
        object as ConstructorParameters<typeof AlertmanagerConfig>[0],
      ).validate(),
    ).not.toThrow();
  });

  it('routes and times exactly as the plain Alertmanager example does', () => {
    const plain = podRebalancerRoute();

    expect(object.spec.route).toEqual({
      receiver: 'pod-rebalancer',
      matchers: [{ name: 'alertname', matchType: '=', value: 'DeploymentCPUImbalance' }],
      groupBy: plain.group_by,
      groupWait: plain.group_wait,
      groupInterval: plain.group_interval,
      repeatInterval: plain.repeat_interval,
    });
    expect(plain.matchers).toEqual(['alertname="DeploymentCPUImbalance"']);
  });

  it('posts to the service with the token from the Secret key the service itself mounts', () => {
    const deployment = readYaml<DeploymentObject>('deploy/base/deployment.yaml');
    const tokenVolume = deployment.spec.template.spec.volumes.find(
      (v) => v.name === 'webhook-token',
    );

    expect(object.spec.receivers).toEqual([
      {
        name: 'pod-rebalancer',
        webhookConfigs: [
          {
            url: WEBHOOK_URL,
            sendResolved: true,
            httpConfig: {
              authorization: {
                type: 'Bearer',
                credentials: {
                  name: tokenVolume?.secret?.secretName,
                  key: tokenVolume?.secret?.items?.[0]?.key,
                },
              },
            },
          },
        ],
      },
    ]);
    expect(tokenVolume?.secret?.secretName).toBeDefined();
  });

  it("lives in Alertmanager's namespace, the one the OnNamespaceExceptForAlertmanagerNamespace strategy leaves unscoped and where the README creates the token Secret", () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

    expect(object.metadata.namespace).toBe('monitoring');
    expect(readFileSync(join(repoRoot, OPERATOR), 'utf8')).toContain(
      'type: OnNamespaceExceptForAlertmanagerNamespace',
    );
    expect(readme).toContain(
      'kubectl -n monitoring create secret generic pod-rebalancer-webhook-token',
    );
  });

  it("never tells a shared cluster to narrow the Alertmanager's selectors to this tool", () => {
    const comments = readFileSync(join(repoRoot, OPERATOR), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('#'))
      .join('\n');

    expect(comments).not.toMatch(/alertmanagerConfig(Namespace)?Selector:\s*\n#\s+matchLabels/);
    expect(comments).toContain('do not narrow them to this tool');
  });
});

describe('when amtool is not installed', () => {
  it('the Alertmanager tests fail naming the Debian package to install, instead of skipping', () => {
    expect(() => runTool(AMTOOL, ['--version'], { PATH: '/nonexistent' })).toThrow(
      'amtool is not on PATH. Install the Debian package `prometheus-alertmanager`',
    );
  });
});
