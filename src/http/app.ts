import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../adapters/logger.js';
import { HttpError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { Pipeline } from '../pipeline.js';
import {
  bodyWithin,
  boundedWork,
  DEFAULT_WEBHOOK_LIMITS,
  type Refusal,
  type WebhookLimits,
} from './limits.js';
import type { TokenSource } from './tokens.js';
import { RETRY_AFTER_SECONDS, RetryLater, requestId, webhookHandlers } from './webhook.js';

export interface AppDeps {
  pipeline: Pipeline;
  tokens: TokenSource;
  telemetry: Metrics;
  registry: Registry;
  logger: Logger;
  /** Readiness: configuration loaded, clients built, not shutting down. */
  ready: () => boolean;
  /** Bounds on webhook work in flight, queued and per request; defaults in limits.ts. */
  limits?: Partial<WebhookLimits>;
}

/** Errors thrown by body-parser carry an HTTP status and a type. */
interface ParserError {
  status?: number;
  type?: string;
}

const PARSER_MESSAGES: Record<string, string> = {
  'entity.parse.failed': 'malformed JSON in the request body',
  'entity.too.large': 'the request body is larger than the limit',
  'encoding.unsupported': 'unsupported Content-Encoding',
  'charset.unsupported': 'unsupported charset',
  'request.aborted': 'the request was aborted',
  'request.size.invalid': 'the request body does not match its Content-Length',
};

/**
 * The one place where errors become HTTP answers: a refused request keeps its 4xx and message,
 * a RetryLater becomes 503 with Retry-After, and anything unexpected is a logged 500 that
 * reveals nothing.
 */
function errorHandler(logger: Logger) {
  const answer = answerError(logger);
  return (error: unknown, req: Request, res: Response, next: NextFunction) => {
    // Already answered (a body that did not arrive in time): the parser's late error changes nothing.
    if (!res.headersSent) answer(error, req, res, next);
  };
}

function answerError(logger: Logger) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof RetryLater) {
      res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
      res.status(503).json({ error: error.message, ...error.report });
      return;
    }
    if (error instanceof HttpError) {
      res.status(error.status).json({ error: error.message, requestId: res.locals.requestId });
      return;
    }
    // body-parser's refusals carry a 4xx status; some (a body that does not match its
    // Content-Encoding) have no type: they are still the client's error, never a 500.
    const parser = error as ParserError;
    if (parser.status && parser.status >= 400 && parser.status < 500) {
      const message = PARSER_MESSAGES[parser.type ?? ''] ?? 'the request body could not be read';
      res.status(parser.status).json({ error: message, requestId: res.locals.requestId });
      return;
    }
    logger.error('unhandled error', {
      requestId: res.locals.requestId,
      error: (error as Error)?.stack ?? String(error),
    });
    res.status(500).json({ error: 'internal error', requestId: res.locals.requestId });
  };
}

/**
 * Logs a 503 given by the limits. The requests metric counts it already: the slot is taken
 * after the webhook's own counting has started (once the body has been read).
 */
function refused(refusal: Refusal, res: Response, deps: AppDeps): void {
  deps.logger.warn('webhook request refused', { requestId: res.locals.requestId, refusal });
}

/** Builds the HTTP app without listening, so tests can drive it with supertest. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Express hashes every answer for an ETag; no client revalidates a webhook answer or a
  // scrape, so that is a SHA-1 per request for nobody (measured in the alert storm, issue 22).
  app.disable('etag');
  app.use(requestId);
  // The handling slot is taken once the body has been read (within bodyTimeoutMs): a slow
  // sender holds a socket, never a slot.
  const bounded = boundedWork({
    ...deps.limits,
    onRefused: (refusal, _req, res) => refused(refusal, res, deps),
  });
  const bodyTimeoutMs = deps.limits?.bodyTimeoutMs ?? DEFAULT_WEBHOOK_LIMITS.bodyTimeoutMs;
  // The webhook first: in an alert storm it is nearly every request, so it tries no other route.
  app.post(
    '/webhook',
    ...webhookHandlers(deps, { bounded, bodyWithin: bodyWithin(bodyTimeoutMs) }),
  );
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const ready = deps.ready();
    res
      .status(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ready\n' : 'not ready\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.use((_req, _res, next) =>
    next(
      new HttpError(404, 'no such route; see GET /healthz, /readyz, /metrics and POST /webhook'),
    ),
  );
  app.use(errorHandler(deps.logger));
  return app;
}
