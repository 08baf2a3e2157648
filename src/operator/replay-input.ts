import {
  compileSchema,
  describeError,
  payloadProblem,
  type WebhookPayload,
} from '../http/schema.js';
import { BadInput } from './command.js';

/**
 * One alert as Alertmanager's API v2 returns it (`amtool alert query -o json`,
 * `GET /api/v2/alerts`): strict on the fields replay reads, tolerant of the others.
 */
const apiV2AlertsSchema = {
  type: 'array',
  maxItems: 10_000,
  items: {
    type: 'object',
    required: ['labels', 'fingerprint', 'startsAt', 'status'],
    properties: {
      labels: { $ref: '#/$defs/labelSet' },
      annotations: { $ref: '#/$defs/labelSet' },
      startsAt: { type: 'string', format: 'date-time' },
      endsAt: { type: 'string', format: 'date-time' },
      fingerprint: { type: 'string', minLength: 1, maxLength: 128 },
      status: {
        type: 'object',
        required: ['state'],
        properties: { state: { enum: ['active', 'suppressed', 'unprocessed'] } },
      },
    },
  },
  $defs: {
    labelSet: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

interface ApiV2Alert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  fingerprint: string;
  status: { state: 'active' | 'suppressed' | 'unprocessed' };
}

const validateApiV2 = compileSchema<ApiV2Alert[]>(apiV2AlertsSchema);

/** What a replay runs: a webhook payload, and what was left out of the input and why. */
export interface ReplayInput {
  format: 'webhook' | 'api-v2';
  payload: WebhookPayload;
  notes: string[];
}

/**
 * API v2 alerts as the webhook payload Alertmanager would have sent. `active` and `unprocessed`
 * alerts are firing. A `suppressed` alert (silenced or inhibited) is one Alertmanager would not
 * send: it is left out unless asked for, so that a silence keeps protecting the Deployment.
 */
export function fromApiV2(alerts: readonly ApiV2Alert[], includeSuppressed: boolean): ReplayInput {
  const notes: string[] = [];
  const kept = alerts.filter((alert) => {
    if (alert.status.state !== 'suppressed' || includeSuppressed) return true;
    notes.push(
      `alert ${alert.fingerprint} is suppressed (silenced or inhibited): Alertmanager would not send it; left out (--include-suppressed replays it)`,
    );
    return false;
  });
  const payload: WebhookPayload = {
    version: '4',
    status: 'firing',
    receiver: 'pod-rebalancer-replay',
    alerts: kept.map((alert) => ({
      status: 'firing',
      labels: alert.labels,
      // The rule's policy travels in the annotations (pod_rebalancer_guard among them).
      annotations: alert.annotations ?? {},
      fingerprint: alert.fingerprint,
      startsAt: alert.startsAt,
    })),
  };
  return { format: 'api-v2', payload, notes };
}

function parseJson(text: string, source: string): unknown {
  if (text.trim() === '') throw new BadInput(`${source}: empty input`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BadInput(`${source}: not JSON (${(error as Error).message})`);
  }
}

function fromWebhook(body: unknown, source: string): ReplayInput {
  const problem = payloadProblem(body);
  if (problem)
    throw new BadInput(`${source}: not a valid Alertmanager webhook payload: ${problem}`);
  const payload = body as WebhookPayload;
  const notes = payload.truncatedAlerts
    ? [`Alertmanager truncated ${payload.truncatedAlerts} alert(s): they are not in the payload`]
    : [];
  return { format: 'webhook', payload, notes };
}

/**
 * Reads what an operator gives replay: an Alertmanager webhook payload (version 4, as saved from
 * a webhook) or an API v2 alert list (`amtool alert query -o json`). Anything else is bad input
 * with a message naming the offending field.
 */
export function parseReplayInput(
  text: string,
  source: string,
  options: { includeSuppressed: boolean },
): ReplayInput {
  const body = parseJson(text, source);
  if (!Array.isArray(body)) {
    if (typeof body === 'object' && body !== null && 'version' in body) {
      return fromWebhook(body, source);
    }
    throw new BadInput(
      `${source}: neither an Alertmanager webhook payload (an object with "version": "4") nor an API v2 alert list (an array, as \`amtool alert query -o json\` prints)`,
    );
  }
  if (!validateApiV2(body)) {
    throw new BadInput(
      `${source}: not a valid Alertmanager API v2 alert list: ${describeError(validateApiV2.errors?.[0], '(list)')}`,
    );
  }
  const input = fromApiV2(body, options.includeSuppressed);
  const problem = payloadProblem(input.payload);
  if (problem) throw new BadInput(`${source}: ${problem}`);
  return input;
}
