import { randomUUID } from 'node:crypto';
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { withDeadline } from '../deadline.js';
import { HttpError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { Pipeline } from '../pipeline.js';
import type { Report } from '../report.js';
import { payloadProblem, type WebhookPayload } from './schema.js';
import type { BoundedHandler, Middleware } from './limits.js';
import type { TokenSource } from './tokens.js';

/** Alertmanager sends at most a few thousand alerts; anything bigger is not from it. */
export const BODY_LIMIT = '4mb';
/**
 * Alerts in one payload: more is refused (413) before it is looked at. Alertmanager's
 * `max_alerts` on the webhook receiver keeps real groups under it (docs/configuration.md).
 */
export const MAX_ALERTS = 1000;
/** Seconds Alertmanager (or a person) should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 10;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Keeps a sane incoming X-Request-Id (so a trace crosses systems), else makes one; echoes it. */
export function requestId(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.get('x-request-id');
  const id = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.locals.requestId = id;
  res.setHeader('X-Request-Id', id);
  next();
}

async function requireToken(req: Request, tokens: TokenSource): Promise<void> {
  const match = /^Bearer ([^\s]+)$/.exec(req.get('authorization') ?? '');
  if (!match || !(await tokens.accepts(match[1]!))) {
    throw new HttpError(401, 'missing or invalid bearer token in the Authorization header');
  }
}

/**
 * Counts the answer (by code, once sent), then refuses a request without a valid token (401).
 * One middleware, not two: in an alert storm every step through the router is paid on every
 * request.
 */
function admit(deps: WebhookDeps) {
  return async (req: Request, res: Response, next: NextFunction) => {
    res.on('finish', () => deps.telemetry.webhookRequests.inc({ code: String(res.statusCode) }));
    await requireToken(req, deps.tokens);
    next();
  };
}

/**
 * Answers 200 with a JSON body through Node.js directly: express's `res.json` would parse and
 * format our own Content-Type again to add its charset, and check freshness and HEAD, none of
 * which a POST answer needs (measured in the alert storm, issue 22).
 */
function answerJson(res: Response, body: unknown): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

/** A 503 that carries the report, so the operator sees what could and could not be decided. */
export class RetryLater extends HttpError {
  constructor(readonly report: Report) {
    super(503, 'Prometheus or the Kubernetes API could not be reached; retry later');
  }
}

export interface WebhookDeps {
  pipeline: Pipeline;
  tokens: TokenSource;
  telemetry: Metrics;
}

/**
 * After the JSON parser: refuses a body that is not JSON (415; the parser left it unread, and
 * checked its Content-Type already, so a parsed body costs no second look at it), then a
 * payload of more than MAX_ALERTS alerts (413) before its schema is even checked.
 */
function acceptBody(req: Request, _res: Response, next: NextFunction): void {
  if (req.body === undefined && !req.is('application/json'))
    throw new HttpError(415, 'Content-Type must be application/json');
  const alerts = (req.body as { alerts?: unknown } | undefined)?.alerts;
  if (Array.isArray(alerts) && alerts.length > MAX_ALERTS) {
    throw new HttpError(
      413,
      `the payload holds ${alerts.length} alerts; at most ${MAX_ALERTS} are accepted per request (set max_alerts on Alertmanager's webhook receiver)`,
    );
  }
  next();
}

/**
 * POST /webhook: auth → the body (within `bodyWithin`) → JSON only, alert cap → a handling slot
 * (`bounded`, which also gives the request its deadline) →
 * schema → the pipeline → 200 with the report, or 503 when something could not be decided
 * because an upstream was unreachable (Alertmanager retries on 5xx only; the Lease makes the
 * retry safe). The handlers in order, for the app's one `/webhook` route: a router of its own
 * would match the path a second time on every request.
 */
export function webhookHandlers(
  deps: WebhookDeps,
  stages: {
    bounded: (work: BoundedHandler) => Middleware;
    bodyWithin: (read: Middleware) => Middleware;
  },
): RequestHandler[] {
  return [
    admit(deps),
    stages.bodyWithin(express.json({ limit: BODY_LIMIT, strict: true })),
    acceptBody,
    stages.bounded(async (req, res, deadline) => {
      const problem = payloadProblem(req.body);
      if (problem) throw new HttpError(400, `invalid Alertmanager payload: ${problem}`);
      const payload = req.body as WebhookPayload;
      const report = await withDeadline(deadline, () =>
        deps.pipeline.handleAlerts(payload.alerts, {
          requestId: res.locals.requestId as string,
          groupKey: payload.groupKey,
          deadline,
        }),
      );
      if (report.results.some((r) => r.retryable)) throw new RetryLater(report);
      // Answered 503 at the deadline already: this late answer is dropped.
      if (!res.headersSent) answerJson(res, report);
    }),
  ];
}
