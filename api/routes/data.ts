import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Decisions, Severities } from '../../core/decision.js';
import type { ReadOnlyQueryResult } from '../../storage/clickhouse/read-only-query.js';
import type { AuditSearch, VerdictSearch } from '../../storage/clickhouse/search.js';
import type { AuditRecord, Page, Verdict } from '../../core/records.js';
import { addRoute, type RouteInfo } from '../route.js';
import { AgentIdParam, Cursor, Limit, Name, TenantParam, TimeParam } from './params.js';

export type VerdictQuery = VerdictSearch;
export type AuditQuery = AuditSearch;
/** The answer of `POST /v1/query`. */
export type QueryResult = ReadOnlyQueryResult;

export interface DataApi {
  verdicts(query: VerdictQuery): Promise<Page<Verdict>>;
  audit(query: AuditQuery): Promise<Page<AuditRecord>>;
  /** Runs one read-only SELECT; refusals and ClickHouse errors throw ApiError (400). */
  query(sql: string, params: Record<string, unknown>, tenant: string | undefined): Promise<QueryResult>;
}

const VerdictQuerySchema = z.strictObject({
  tenant: TenantParam.optional(),
  agent_id: AgentIdParam.optional(),
  policy_id: Name.optional(),
  policy_type: Name.optional(),
  decision: z.enum(Decisions).optional(),
  severity: z.enum(Severities).optional(),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});

const AuditQuerySchema = z.strictObject({
  tenant: TenantParam.optional(),
  agent_id: AgentIdParam.optional(),
  policy_id: Name.optional(),
  decision: z.enum(Decisions).optional(),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});

const QueryBody = z.strictObject({
  /** One SELECT (or WITH … SELECT) over events, verdicts, audit_log, alerts, capability_history. */
  sql: z.string().min(1).max(100_000),
  /** Values of `{name:Type}` placeholders. */
  params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a plain identifier'), z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.union([z.string(), z.number()]))])).default({}),
});

export function registerDataRoutes(app: FastifyInstance, routes: RouteInfo[], api: DataApi): void {
  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/verdicts',
    access: 'read',
    tag: 'verdicts',
    summary: 'Search verdicts by tenant, agent, policy, decision, severity and time range; newest first, cursor-paginated',
    query: VerdictQuerySchema,
    handler: async ({ query, tenantScope }) => {
      const tenant = tenantScope(query.tenant);
      const { cursor, tenant: _t, ...rest } = query;
      return api.verdicts({ ...rest, ...(tenant === undefined ? {} : { tenant }), cursor: cursor ?? null });
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/audit',
    access: 'read',
    tag: 'audit',
    summary: 'Search the audit log (one hash-chained row per judged event); newest first, cursor-paginated',
    query: AuditQuerySchema,
    handler: async ({ query, tenantScope }) => {
      const tenant = tenantScope(query.tenant);
      const { cursor, tenant: _t, ...rest } = query;
      return api.audit({ ...rest, ...(tenant === undefined ? {} : { tenant }), cursor: cursor ?? null });
    },
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/query',
    access: 'analyst',
    tag: 'query',
    summary: 'Run one read-only SELECT with bound parameters; row and time limits apply, and a tenant-bound key sees only its tenant',
    body: QueryBody,
    // One query may scan for up to api.query.max_seconds.
    budget: 'costly',
    handler: async ({ body, tenantScope }) => api.query(body.sql, body.params, tenantScope()),
  });
}
