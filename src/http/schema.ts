import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Alert } from '../core/targets.js';

const MAX_ALERTS = 10_000;

/**
 * Alertmanager's webhook payload, version 4. Strict on the fields pod-rebalancer reads,
 * tolerant of fields newer Alertmanagers add (no additionalProperties: false).
 */
export const webhookSchema = {
  type: 'object',
  required: ['version', 'alerts'],
  properties: {
    version: { const: '4' },
    status: { enum: ['firing', 'resolved'] },
    receiver: { type: 'string' },
    groupKey: { type: 'string', maxLength: 8192 },
    truncatedAlerts: { type: 'integer', minimum: 0 },
    alerts: { type: 'array', maxItems: MAX_ALERTS, items: { $ref: '#/$defs/alert' } },
  },
  $defs: {
    alert: {
      type: 'object',
      required: ['status', 'labels', 'fingerprint'],
      properties: {
        status: { enum: ['firing', 'resolved'] },
        labels: { $ref: '#/$defs/labelSet' },
        annotations: { $ref: '#/$defs/labelSet' },
        startsAt: { type: 'string', format: 'date-time' },
        endsAt: { type: 'string', format: 'date-time' },
        fingerprint: { type: 'string', minLength: 1, maxLength: 128 },
      },
    },
    labelSet: {
      type: 'object',
      maxProperties: 256,
      propertyNames: { maxLength: 1024 },
      additionalProperties: { type: 'string', maxLength: 65536 },
    },
  },
} as const;

export interface WebhookPayload {
  version: '4';
  status?: 'firing' | 'resolved';
  receiver?: string;
  groupKey?: string;
  truncatedAlerts?: number;
  alerts: Alert[];
}

// ajv-formats is CommonJS; under ESM its function may sit on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

const ajv = new Ajv({ allErrors: false, strict: true });
addFormats(ajv);

/** Compiles a JSON schema with the project's settings (strict, formats, first error only). */
export function compileSchema<T>(schema: object): ValidateFunction<T> {
  return ajv.compile<T>(schema);
}

/** One sentence naming the offending field of a validation error, e.g. "/alerts/0/status must be …". */
export function describeError(error: ErrorObject | undefined, root: string): string {
  if (!error) return `${root} is invalid`;
  const allowed =
    error.params && 'allowedValues' in error.params
      ? ` (${(error.params.allowedValues as unknown[]).join(', ')})`
      : '';
  const expected =
    error.keyword === 'const' ? ` (expected ${JSON.stringify(error.params.allowedValue)})` : '';
  return `${error.instancePath || root} ${error.message ?? 'is invalid'}${allowed}${expected}`;
}

const validatePayload = compileSchema<WebhookPayload>(webhookSchema);

/**
 * Validates a parsed body. Returns undefined when valid, else one sentence naming the
 * offending field, e.g. "/alerts/0/status must be equal to one of the allowed values".
 */
export function payloadProblem(body: unknown): string | undefined {
  return validatePayload(body) ? undefined : describeError(validatePayload.errors?.[0], '(body)');
}
