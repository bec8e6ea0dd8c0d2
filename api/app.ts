import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Histogram } from 'prom-client';
import { PolicyAdminError } from '../detectors/policy-admin.js';
import { StorageError } from '../storage/errors.js';
import { admits, type ApiKeyRing } from './auth.js';
import { ApiError } from './errors.js';
import type { RouteInfo } from './route.js';
import { registerAlertRoutes, type AlertsApi } from './routes/alerts.js';
import { registerAgentRoutes, type AgentsApi } from './routes/agents.js';
import { registerDataRoutes, type DataApi } from './routes/data.js';
import { registerPolicyRoutes, type PoliciesApi } from './routes/policies.js';
import { registerSystemRoutes } from './routes/system.js';

export type { AlertsApi } from './routes/alerts.js';

export interface ApiDeps {
  logger: Logger;
  /** Keys the API accepts (hashes only). */
  keys: ApiKeyRing;
  /** `POST /v1/events` without a key (config `api.allow_unauthenticated_ingest`). @default false */
  allowUnauthenticatedIngest?: boolean;
  alerts: AlertsApi;
  /** Policy document management and dry-run; absent in processes without the API stage's control plane. */
  policies?: PoliciesApi;
  data?: DataApi;
  agents?: AgentsApi;
  /** Prometheus registry served at `/metrics`. */
  metrics?: Registry;
  /** Liveness details for `/healthz`. */
  health: () => Record<string, unknown>;
  /** Whether every stage is started (for `/readyz`). */
  ready: () => boolean;
  /** Largest request body. @default 4 MiB */
  bodyLimit?: number;
}

/** The app and the routes it serves (for tests and docs). */
export type ApiApp = FastifyInstance & { routesInfo: RouteInfo[] };

function sendError(reply: FastifyReply, status: number, code: string, message: string, details: unknown = null) {
  return reply.code(status).send({ code, message, details });
}

/**
 * Builds the HTTP API (without listening). Dependencies come in; nothing is a
 * singleton, so tests use `app.inject()` against real stages. Every route
 * declares who may call it; a request without a valid key gets 401, a key of
 * the wrong role 403. Call `await app.ready()` (or `inject`) after adding
 * further routes such as event ingest.
 */
export async function buildApp(deps: ApiDeps, options: FastifyServerOptions = {}): Promise<ApiApp> {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit ?? 4 * 1024 * 1024,
    // Per-request logs would drown the log at ingest rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Agent ids may be 256 characters, URL-encoded up to three times that.
    routerOptions: { maxParamLength: 1024 },
    // Errors the router raises before a route runs (over-long or malformed path parameters) get the usual shape.
    frameworkErrors: (error, _request, reply) => {
      void sendError(reply, error.statusCode ?? 400, 'AW_API_VALIDATION', error.message);
    },
    ...options,
  }) as unknown as ApiApp;
  const routes: RouteInfo[] = [];
  app.decorate('routesInfo', routes);
  app.decorateRequest('principal', null);
  // Input is parsed by each route's zod schema; the JSON schemas only document it.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof ApiError) return sendError(reply, error.statusCode, error.code, error.message, error.details);
    if (error instanceof PolicyAdminError) {
      const [status, code] =
        error.code === 'not_found' ? [404, 'AW_API_NOT_FOUND'] : error.code === 'invalid' ? [400, 'AW_API_POLICY_INVALID'] : [409, 'AW_API_CONFLICT'];
      return sendError(reply, status, code, error.message, error.problems.length > 0 ? error.problems : null);
    }
    if (error instanceof StorageError && (error.code === 'AW_STORAGE_INVALID_FILTER' || error.code === 'AW_STORAGE_INVALID_CURSOR')) return sendError(reply, 400, 'AW_API_VALIDATION', error.message);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'AW_API_BODY_TOO_LARGE', error.message);
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'AW_API_UNSUPPORTED_MEDIA_TYPE', error.message);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, error.statusCode, 'AW_API_VALIDATION', error.message);
    }
    request.log.error({ err: error, route: request.routeOptions.url }, 'request failed');
    return sendError(reply, 500, 'AW_API_INTERNAL', 'internal error');
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'AW_API_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));

  // Authentication and authorisation, before the body is read.
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config;
    const url = request.routeOptions.url ?? '';
    // Unknown routes answer 404 only to callers with a key; the UI's assets are public like /docs.
    const access = config.access ?? (url.startsWith('/docs') ? 'public' : 'read');
    if (access === 'public') return;
    const header = request.headers.authorization;
    if (access === 'ingest' && deps.allowUnauthenticatedIngest === true && header === undefined) return;
    const principal = deps.keys.authenticate(header);
    if (principal === null) {
      reply.header('www-authenticate', 'Bearer realm="agentwatch"');
      return sendError(reply, 401, 'AW_API_UNAUTHORIZED', header === undefined ? 'missing bearer API key (Authorization: Bearer <key>)' : 'invalid API key');
    }
    if (!admits(access, principal.role)) {
      return sendError(reply, 403, 'AW_API_FORBIDDEN', `role ${principal.role} may not ${request.method} ${url}`);
    }
    if (config.global === true && principal.tenant !== null) {
      return sendError(reply, 403, 'AW_API_FORBIDDEN', `the policy document is shared by all tenants: changing it needs a key not bound to a tenant (this one is bound to ${principal.tenant})`);
    }
    request.principal = principal;
  });

  if (deps.metrics !== undefined) {
    const registry = deps.metrics;
    const duration = new Histogram({
      name: 'agentwatch_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    });
    app.addHook('onResponse', async (request, reply) => {
      duration.observe({ method: request.method, route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'agentwatch API',
        version: '0.1.0',
        description: 'Policies, alerts, verdicts, audit, agents, dry-run and read-only SQL. Every route but health, metrics and docs needs `Authorization: Bearer <key>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  registerSystemRoutes(app, routes, { health: deps.health, ready: deps.ready, ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }) });
  registerAlertRoutes(app, routes, deps.alerts);
  if (deps.policies !== undefined) registerPolicyRoutes(app, routes, deps.policies);
  if (deps.data !== undefined) registerDataRoutes(app, routes, deps.data);
  if (deps.agents !== undefined) registerAgentRoutes(app, routes, deps.agents);
  return app;
}
