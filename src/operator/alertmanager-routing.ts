import { parse } from 'yaml';
import type { CheckResult } from './check-result.js';

/** One route of Alertmanager's routing tree, as its configuration file writes it. */
export interface AlertmanagerRoute {
  receiver?: string;
  matchers?: string[];
  match?: Record<string, string>;
  match_re?: Record<string, string>;
  continue?: boolean;
  routes?: AlertmanagerRoute[];
}

/** One receiver: only its webhooks matter here. */
export interface AlertmanagerReceiver {
  name: string;
  webhook_configs?: { url?: string }[];
}

export interface AlertmanagerConfigFile {
  route?: AlertmanagerRoute;
  receivers?: AlertmanagerReceiver[];
}

type Labels = Readonly<Record<string, string>>;
type LabelTest = (labels: Labels) => boolean;

/** `name op value` as Alertmanager writes a matcher; the value quoted or bare. */
const MATCHER = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/;

function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  try {
    return JSON.parse(value) as string;
  } catch {
    return value.slice(1, -1);
  }
}

/** One matcher as a test on labels; regexes are anchored, a missing label is "". */
function labelTest(name: string, op: string, value: string): LabelTest {
  if (op === '=') return (labels) => (labels[name] ?? '') === value;
  if (op === '!=') return (labels) => (labels[name] ?? '') !== value;
  const regex = new RegExp(`^(?:${value})$`);
  if (op === '=~') return (labels) => regex.test(labels[name] ?? '');
  return (labels) => !regex.test(labels[name] ?? '');
}

/** Every condition of a route: `matchers`, and the older `match` / `match_re`. */
function routeTests(route: AlertmanagerRoute): LabelTest[] {
  const parsed = (route.matchers ?? []).map((text) => {
    const found = MATCHER.exec(text);
    if (!found) throw new Error(`cannot read the matcher ${JSON.stringify(text)}`);
    return labelTest(found[1]!, found[2]!, unquote(found[3]!));
  });
  const equal = Object.entries(route.match ?? {}).map(([name, value]) =>
    labelTest(name, '=', value),
  );
  const regex = Object.entries(route.match_re ?? {}).map(([name, value]) =>
    labelTest(name, '=~', value),
  );
  return [...parsed, ...equal, ...regex];
}

/**
 * The receivers an alert with these labels is sent to, as Alertmanager's dispatcher walks the
 * tree: depth first, the first matching child wins unless it says `continue: true`, a route
 * without a receiver inherits its parent's, and a route no child takes keeps the alert itself.
 */
export function receiversFor(route: AlertmanagerRoute, labels: Labels, inherited = ''): string[] {
  const receiver = route.receiver ?? inherited;
  const found: string[] = [];
  for (const child of route.routes ?? []) {
    if (!routeTests(child).every((test) => test(labels))) continue;
    found.push(...receiversFor(child, labels, receiver));
    if (!child.continue) break;
  }
  return found.length > 0 ? found : [receiver];
}

/** A receiver posting to a pod-rebalancer webhook: a URL ending in /webhook, or one hidden. */
function postsToWebhook(receiver: AlertmanagerReceiver | undefined): boolean {
  return (receiver?.webhook_configs ?? []).some(
    (webhook) => webhook.url === '<secret>' || /\/webhook$/.test(webhook.url ?? ''),
  );
}

const ROUTE_FIX =
  "put pod-rebalancer's route first among route.routes, before any catch-all, with continue: false " +
  '(deploy/alertmanager/kube-prometheus-stack-values.yaml), or apply deploy/alertmanager/alertmanager-config.yaml ' +
  'with alertmanagerConfigMatcherStrategy OnNamespaceExceptForAlertmanagerNamespace (docs/operations.md, "Route the alert")';

function describeLabels(labels: Labels): string {
  return `{${Object.entries(labels)
    .map(([name, value]) => `${name}="${value}"`)
    .join(', ')}}`;
}

/**
 * Where Alertmanager's running configuration sends each alert the service acts on: `ok` when a
 * receiver posting to the webhook gets it, else what gets it instead and how to fix the route.
 */
function judgeRouting(configText: string, alerts: readonly Labels[]): CheckResult[] {
  const config = parse(configText) as AlertmanagerConfigFile | null;
  if (!config?.route) {
    return [
      {
        check: 'alertmanager',
        ok: false,
        detail: 'its configuration has no route',
        fix: 'check the URL: it must be an Alertmanager',
      },
    ];
  }
  const receivers = new Map((config.receivers ?? []).map((r) => [r.name, r]));
  return alerts.map((labels) => {
    const check = `alertmanager routes ${labels.alertname}`;
    const reached = receiversFor(config.route!, labels);
    const ours = reached.filter((name) => postsToWebhook(receivers.get(name)));
    const detail = `${describeLabels(labels)} goes to ${reached.map((r) => `"${r}"`).join(', ')}`;
    return ours.length > 0
      ? { check, ok: true, detail: `${detail}, whose webhook is pod-rebalancer's` }
      : { check, ok: false, detail: `${detail}, not to pod-rebalancer's webhook`, fix: ROUTE_FIX };
  });
}

/** Alertmanager's running configuration, from `GET /api/v2/status` (`config.original`). */
async function fetchRunningConfig(baseUrl: string, timeoutMs: number): Promise<string> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/v2/status`;
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  const body = (await response.json()) as { config?: { original?: unknown } };
  if (typeof body.config?.original !== 'string') {
    throw new Error(`GET ${url} holds no config.original: not an Alertmanager v2 API`);
  }
  return body.config.original;
}

/**
 * `check --alertmanager URL`: for each alert name the service acts on, with the labels the
 * shipped rule gives it and a Deployment in `namespace`, which receiver the running
 * Alertmanager sends it to.
 */
export async function checkAlertmanagerRouting(
  baseUrl: string,
  alertNames: Iterable<string>,
  namespace: string,
): Promise<CheckResult[]> {
  let configText: string;
  try {
    configText = await fetchRunningConfig(baseUrl, 10_000);
  } catch (error) {
    return [
      {
        check: 'alertmanager',
        ok: false,
        detail: `cannot read its configuration: ${(error as Error).message}`,
        fix: 'check the URL (e.g. kubectl -n monitoring port-forward svc/alertmanager-operated 9093, then http://127.0.0.1:9093)',
      },
    ];
  }
  const alerts = [...alertNames].map((alertname) => ({
    alertname,
    severity: 'warning',
    namespace,
    deployment: 'example',
  }));
  try {
    return [
      { check: 'alertmanager', ok: true, detail: `running configuration read from ${baseUrl}` },
      ...judgeRouting(configText, alerts),
    ];
  } catch (error) {
    return [
      {
        check: 'alertmanager',
        ok: false,
        detail: `cannot read its routes: ${(error as Error).message}`,
        fix: 'check the configuration with amtool check-config',
      },
    ];
  }
}
