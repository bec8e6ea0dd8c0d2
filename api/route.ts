import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { problemsFromZod } from '../core/validation.js';
import type { Access, Principal } from './auth.js';
import { ApiError } from './errors.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * The request budget a route spends (config `api.rate_limit`): `read` for GET,
 * `write` for other methods, `ingest` for event ingest, `costly` for routes
 * that can hold a ClickHouse scan or a worker thread for seconds.
 */
export type RateBudget = 'read' | 'write' | 'costly' | 'ingest';

/** What a handler gets: parsed input and the caller. */
export interface RouteContext<Q, P, B> {
  query: Q;
  params: P;
  body: B;
  /** Null only on `public` routes and on ingest when unauthenticated ingest is allowed. */
  principal: Principal | null;
  /**
   * The tenant a read or change is confined to: a tenant-bound key's own
   * tenant (asking for another is 403), otherwise the tenant asked for, if any.
   */
  tenantScope(requested?: string): string | undefined;
  /** The author of a change, recorded in histories: the key id. */
  author: string;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteSpec<QS extends z.ZodType, PS extends z.ZodType, BS extends z.ZodType> {
  method: Method;
  url: string;
  access: Access;
  summary: string;
  tag: string;
  description?: string;
  query?: QS;
  params?: PS;
  body?: BS;
  /** Changes shared by all tenants (the policy document): refused to tenant-bound keys. */
  global?: boolean;
  /** Success status. @default 200 */
  status?: number;
  /** Largest body this route reads. @default the app's body limit */
  bodyLimit?: number;
  /** Request budget this route spends. @default `read` for GET, `write` otherwise */
  budget?: RateBudget;
  handler(ctx: RouteContext<z.output<QS>, z.output<PS>, z.output<BS>>): Promise<unknown>;
}

/** The registered routes (method, url, access): for the role matrix test and the docs. */
export interface RouteInfo {
  method: Method;
  url: string;
  access: Access;
  global: boolean;
  tag: string;
  summary: string;
  /** Largest body the route reads (bytes); a larger one is refused with 413. */
  bodyLimit: number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    global?: boolean;
    budget?: RateBudget;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError('AW_API_VALIDATION', `invalid ${where}: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, problemsFromZod(result.error));
  return result.data;
}

function jsonSchema(schema: z.ZodType | undefined): Record<string, unknown> | undefined {
  if (schema === undefined) return undefined;
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/** Fastify's own default, for an app built without `bodyLimit`. */
const FASTIFY_BODY_LIMIT = 1024 * 1024;

/** The largest body a route reads: its own limit, else the app's, else fastify's default. */
export function routeBodyLimit(app: FastifyInstance, own: number | undefined): number {
  return own ?? app.initialConfig.bodyLimit ?? FASTIFY_BODY_LIMIT;
}

const EMPTY = z.unknown();
/** A route without query parameters refuses any, so a typo is an error rather than a silently ignored filter. */
const NO_QUERY = z.strictObject({});

/** Registers a route whose input is parsed by zod and documented in the OpenAPI document. */
export function addRoute<QS extends z.ZodType = z.ZodUnknown, PS extends z.ZodType = z.ZodUnknown, BS extends z.ZodType = z.ZodUnknown>(
  app: FastifyInstance,
  routes: RouteInfo[],
  spec: RouteSpec<QS, PS, BS>,
): void {
  routes.push({ method: spec.method, url: spec.url, access: spec.access, global: spec.global ?? false, tag: spec.tag, summary: spec.summary, bodyLimit: routeBodyLimit(app, spec.bodyLimit) });
  const querystring = jsonSchema(spec.query);
  const params = jsonSchema(spec.params);
  const body = jsonSchema(spec.body);
  app.route({
    method: spec.method,
    url: spec.url,
    config: { access: spec.access, global: spec.global ?? false, ...(spec.budget === undefined ? {} : { budget: spec.budget }) },
    ...(spec.bodyLimit === undefined ? {} : { bodyLimit: spec.bodyLimit }),
    schema: {
      summary: spec.summary,
      ...(spec.description === undefined ? {} : { description: spec.description }),
      tags: [spec.tag],
      ...(querystring === undefined ? {} : { querystring }),
      ...(params === undefined ? {} : { params }),
      ...(body === undefined ? {} : { body }),
      ...(spec.access === 'public' ? { security: [] } : {}),
    },
    handler: async (request, reply) => {
      const principal = request.principal;
      const ctx: RouteContext<z.output<QS>, z.output<PS>, z.output<BS>> = {
        query: parseOrThrow((spec.query ?? NO_QUERY) as QS, request.query ?? {}, 'query'),
        params: parseOrThrow((spec.params ?? EMPTY) as PS, request.params ?? {}, 'path'),
        body: parseOrThrow((spec.body ?? EMPTY) as BS, request.body ?? undefined, 'body'),
        principal,
        author: principal?.key_id ?? 'anonymous',
        tenantScope(requested?: string) {
          if (principal === null || principal.tenant === null) return requested;
          if (requested !== undefined && requested !== principal.tenant) {
            throw new ApiError('AW_API_FORBIDDEN', `this key is bound to tenant ${principal.tenant}`);
          }
          return principal.tenant;
        },
        request,
        reply,
      };
      const result = await spec.handler(ctx);
      if (spec.status !== undefined) reply.code(spec.status);
      return result;
    },
  });
}
