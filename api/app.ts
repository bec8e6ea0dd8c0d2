import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Counter, Histogram } from 'prom-client';
import { PolicyAdminError } from '../detectors/policy-admin.js';
import { StorageError } from '../storage/errors.js';
import { admits, type ApiKeyRing } from './auth.js';
import { ApiError } from './errors.js';
import { routeBodyLimit, type RateBudget, type RouteInfo } from './route.js';
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
  /** Request budgets (config `api.rate_limit`). @default {@link DEFAULT_RATE_LIMITS} */
  rateLimit?: ApiRateLimits;
}

/** Request budgets per key and window: the `api.rate_limit` config section (cli/config.ts documents each). */
export interface ApiRateLimits {
  enabled: boolean;
  window_seconds: number;
  read_per_window: number;
  write_per_window: number;
  costly_per_window: number;
  ingest_per_window: number;
  /** Counted per client address, not per key: a failed request has no key. */
  auth_failures_per_window: number;
}

/** The defaults of `api.rate_limit` (a test holds them equal), for an app built without it. */
export const DEFAULT_RATE_LIMITS: Readonly<ApiRateLimits> = Object.freeze({
  enabled: true,
  window_seconds: 60,
  read_per_window: 600,
  write_per_window: 300,
  costly_per_window: 60,
  ingest_per_window: 100_000,
  auth_failures_per_window: 30,
});

/**
 * Budget counters kept: every key's four budgets plus unauthenticated ingest
 * by address. The least recently used is dropped beyond, which only ever
 * hands a fresh budget to a caller idle for longest.
 */
const RATE_LIMIT_ENTRIES = 100_000;

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
  // Routes registered outside addRoute (event ingest) are listed too, so the
  // role, size and rate-limit tests cover every route that needs a key.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    const method = route.method;
    // HEAD twins of GET routes are fastify's own, answered like the GET.
    if (access === undefined || typeof method !== 'string' || method === 'HEAD' || routes.some((r) => r.method === method && r.url === route.url)) return;
    const tags = route.schema?.tags;
    routes.push({
      method: method as RouteInfo['method'],
      url: route.url,
      access,
      global: route.config?.global ?? false,
      tag: Array.isArray(tags) && typeof tags[0] === 'string' ? tags[0] : 'other',
      summary: typeof route.schema?.summary === 'string' ? route.schema.summary : '',
      bodyLimit: routeBodyLimit(app, route.bodyLimit),
    });
  });
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

  const limits = deps.rateLimit ?? DEFAULT_RATE_LIMITS;
  const rateLimited =
    deps.metrics === undefined
      ? undefined
      : new Counter({
          name: 'agentwatch_http_rate_limited_total',
          help: 'Requests refused with 429 because a key (or an address failing authentication) spent its budget',
          labelNames: ['budget'],
          registers: [deps.metrics],
        });
  const budgets = limits.enabled ? await requestBudgets(app, limits) : undefined;

  /**
   * Spends one request of a budget; answers 429 (true) once it is spent.
   * Answers under a budget carry the plugin's `x-ratelimit-*` headers; a 429 also `Retry-After`.
   */
  async function overBudget(request: FastifyRequest, reply: FastifyReply, budget: RateBudget | 'auth_failures'): Promise<boolean> {
    if (budgets === undefined) return false;
    const spent = await (budget === 'auth_failures' ? budgets.authFailures : budgets.perKey)(request);
    if (spent.isAllowed) return false;
    reply.header('x-ratelimit-limit', spent.max).header('x-ratelimit-remaining', spent.remaining).header('x-ratelimit-reset', spent.ttlInSeconds);
    if (!spent.isExceeded) return false;
    reply.header('retry-after', spent.ttlInSeconds);
    rateLimited?.inc({ budget });
    const who = budget === 'auth_failures' ? `failed authentications from ${normalizeIP(request.ip)}` : `the ${budget} budget of ${request.principal === null ? `address ${normalizeIP(request.ip)}` : `key ${request.principal.key_id}`}`;
    void sendError(reply, 429, 'AW_API_RATE_LIMITED', `too many requests: ${who} allows ${spent.max} per ${limits.window_seconds} s; retry in ${spent.ttlInSeconds} s`, {
      budget,
      limit: spent.max,
      window_seconds: limits.window_seconds,
      retry_after_seconds: spent.ttlInSeconds,
    });
    return true;
  }

  // Authentication, request budgets and authorisation, before the body is read
  // (so a caller over its budget cannot make the process read 4 MiB bodies).
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config;
    const url = request.routeOptions.url ?? '';
    // Unknown routes answer 404 only to callers with a key; the UI's assets are public like /docs.
    const access = config.access ?? (url.startsWith('/docs') ? 'public' : 'read');
    // Probes and docs are never limited: a throttled /healthz would get a healthy process restarted.
    if (access === 'public') return;
    const header = request.headers.authorization;
    if (access === 'ingest' && deps.allowUnauthenticatedIngest === true && header === undefined) {
      if (await overBudget(request, reply, 'ingest')) return reply;
      return;
    }
    const principal = deps.keys.authenticate(header);
    if (principal === null) {
      // Counted by address after the key check, so a valid key behind the same
      // proxy or NAT is never locked out by someone else's failures.
      if (await overBudget(request, reply, 'auth_failures')) return reply;
      reply.header('www-authenticate', 'Bearer realm="agentwatch"');
      return sendError(reply, 401, 'AW_API_UNAUTHORIZED', header === undefined ? 'missing bearer API key (Authorization: Bearer <key>)' : 'invalid API key');
    }
    // Budgets are the key's own: spent before the role check, so a key cannot hammer routes it may not call either.
    request.principal = principal;
    if (await overBudget(request, reply, budgetOf(request))) return reply;
    if (!admits(access, principal.role)) {
      return sendError(reply, 403, 'AW_API_FORBIDDEN', `role ${principal.role} may not ${request.method} ${url}`);
    }
    if (config.global === true && principal.tenant !== null) {
      return sendError(reply, 403, 'AW_API_FORBIDDEN', `the policy document is shared by all tenants: changing it needs a key not bound to a tenant (this one is bound to ${principal.tenant})`);
    }
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

/** The budget a request spends: the route's own, else by what it does. */
function budgetOf(request: FastifyRequest): RateBudget {
  const config = request.routeOptions.config;
  if (config.budget !== undefined) return config.budget;
  if (config.access === 'ingest') return 'ingest';
  return request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
}

const BUDGET_LIMIT: Record<RateBudget, 'read_per_window' | 'write_per_window' | 'costly_per_window' | 'ingest_per_window'> = {
  read: 'read_per_window',
  write: 'write_per_window',
  costly: 'costly_per_window',
  ingest: 'ingest_per_window',
};

/**
 * Counters of @fastify/rate-limit (in-process, fixed windows), used from the
 * authentication hook rather than as the plugin's own route hook: the budget
 * must be keyed by the key the hook identified, and failed authentications
 * counted only once they failed.
 */
async function requestBudgets(app: FastifyInstance, limits: ApiRateLimits) {
  const timeWindow = limits.window_seconds * 1000;
  await app.register(rateLimit, {
    // No route hooks: the budgets are spent from the authentication hook.
    global: false,
    cache: RATE_LIMIT_ENTRIES,
    timeWindow,
    // Key ids are [A-Za-z0-9._-], so `key:` and `ip:` names never collide.
    keyGenerator: (request) => `${budgetOf(request)}|${request.principal === null ? `ip:${normalizeIP(request.ip)}` : `key:${request.principal.key_id}`}`,
    max: (request) => limits[BUDGET_LIMIT[budgetOf(request)]],
  });
  return {
    perKey: app.createRateLimit(),
    // Its own store (the plugin's default of 5,000 addresses, least recently used dropped).
    authFailures: app.createRateLimit({ timeWindow, max: limits.auth_failures_per_window, keyGenerator: (request) => normalizeIP(request.ip) }),
  };
}
