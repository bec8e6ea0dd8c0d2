import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AlertFilter } from '../core/ports.js';
import { AlertStatuses, type Alert, type Page } from '../core/records.js';
import { Severities } from '../core/decision.js';
import { problemsFromZod } from '../core/validation.js';
import { ApiError } from './errors.js';

/** What the API needs from the alerting stage and the analytics store. */
export interface AlertsApi {
  list(filter: AlertFilter): Promise<Page<Alert>>;
  get(alertId: string): Promise<Alert | null>;
  /** Throws ApiError NOT_FOUND / CONFLICT as appropriate. */
  acknowledge(alertId: string, by: string): Promise<Alert>;
  resolve(alertId: string, by: string): Promise<Alert>;
}

export interface ApiDeps {
  logger: Logger;
  alerts: AlertsApi;
  /** Liveness details for `/healthz`. */
  health: () => Record<string, unknown>;
  /** Whether every stage is started (for `/readyz`). */
  ready: () => boolean;
  /** Largest request body. @default 4 MiB */
  bodyLimit?: number;
}

const timeParam = z
  .union([z.iso.datetime({ offset: true }), z.string().regex(/^\d{1,15}$/)])
  .transform((v) => (/^\d+$/.test(v) ? Number(v) : Date.parse(v)));

const AlertQuerySchema = z.strictObject({
  status: z.enum(AlertStatuses).optional(),
  severity: z.enum(Severities).optional(),
  policy_id: z.string().min(1).max(128).optional(),
  policy_type: z.string().min(1).max(64).optional(),
  agent_id: z.string().min(1).max(256).optional(),
  tenant: z.string().min(1).max(128).optional(),
  from: timeParam.optional(),
  to: timeParam.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(512).optional(),
});

const AlertIdParams = z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/, 'must be a 32-character alert id') });
const ActorBody = z.object({ by: z.string().min(1).max(256).optional(), comment: z.string().max(2000).optional() }).optional();

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError('AW_API_VALIDATION', `invalid ${where}`, problemsFromZod(result.error));
  return result.data;
}

/**
 * Builds the HTTP API (without listening). Dependencies come in; nothing is a
 * singleton, so tests use `app.inject()` against real stages.
 */
export function buildApp(deps: ApiDeps, options: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit ?? 4 * 1024 * 1024,
    // Per-request logs would drown the log at ingest rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    ...options,
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof ApiError) {
      return reply.code(error.statusCode).send({ code: error.code, message: error.message, details: error.details });
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ code: 'AW_API_BODY_TOO_LARGE', message: error.message, details: null });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send({ code: 'AW_API_UNSUPPORTED_MEDIA_TYPE', message: error.message, details: null });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ code: 'AW_API_VALIDATION', message: error.message, details: null });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ code: 'AW_API_INTERNAL', message: 'internal error', details: null });
  });

  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ code: 'AW_API_NOT_FOUND', message: `no route ${request.method} ${request.url}`, details: null });
  });

  app.get('/healthz', async () => ({ status: 'ok', ...deps.health() }));
  app.get('/readyz', async (_request, reply) => {
    if (!deps.ready()) return reply.code(503).send({ code: 'AW_API_UNAVAILABLE', message: 'not ready', details: null });
    return { status: 'ready' };
  });

  app.get('/v1/alerts', async (request) => {
    const q = parseOrThrow(AlertQuerySchema, request.query, 'query');
    return deps.alerts.list({ ...q, cursor: q.cursor ?? null });
  });

  app.get('/v1/alerts/:id', async (request) => {
    const { id } = parseOrThrow(AlertIdParams, request.params, 'path');
    const alert = await deps.alerts.get(id);
    if (alert === null) throw new ApiError('AW_API_NOT_FOUND', `no alert ${id}`);
    return alert;
  });

  app.post('/v1/alerts/:id/ack', async (request) => {
    const { id } = parseOrThrow(AlertIdParams, request.params, 'path');
    const body = parseOrThrow(ActorBody, request.body ?? undefined, 'body');
    return deps.alerts.acknowledge(id, body?.by ?? 'api');
  });

  app.post('/v1/alerts/:id/resolve', async (request) => {
    const { id } = parseOrThrow(AlertIdParams, request.params, 'path');
    const body = parseOrThrow(ActorBody, request.body ?? undefined, 'body');
    return deps.alerts.resolve(id, body?.by ?? 'api');
  });

  return app;
}
