import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Severities } from '../../core/decision.js';
import type { AlertDelivery, AlertFilter } from '../../core/ports.js';
import { AlertStatuses, type Alert, type Page, type Verdict } from '../../core/records.js';
import { ApiError } from '../errors.js';
import { addRoute, type RouteInfo } from '../route.js';
import { Bool, Cursor, Limit, Name, TenantParam, TimeParam } from './params.js';

/** One id's outcome in a bulk acknowledge. */
export interface BulkAckResult {
  alert_id: string;
  status: 'acknowledged' | 'not_found' | 'conflict';
  alert?: Alert;
}

/** A silence as the API shows it. */
export interface SilenceView {
  silence_id: string;
  tenant: string | null;
  [key: string]: unknown;
}

export const SilenceInputSchema = z.strictObject({
  /** Tenant the silence covers; omitted: every tenant (keys not bound to a tenant only). */
  tenant: TenantParam.optional(),
  matchers: z.strictObject({
    policy_id: Name.optional(),
    policy_type: Name.optional(),
    agent_id: z.string().min(1).max(256).optional(),
    severity: z.array(z.enum(Severities)).min(1).optional(),
  }),
  /** Start (RFC 3339 or epoch ms); omitted: now. */
  starts_at: TimeParam.optional(),
  /** End (RFC 3339 or epoch ms). */
  ends_at: TimeParam,
  comment: z.string().trim().min(1, 'must say why').max(2000),
  /** Who asks for it (a person); the key id is recorded with it. */
  created_by: z.string().min(1).max(256).optional(),
});
export type SilenceInput = z.output<typeof SilenceInputSchema>;

/** Who asks for an alert change. */
export interface AlertCaller {
  /** Recorded on the alert. */
  by: string;
  /** A tenant-bound caller's tenant: other tenants' alerts are not found. */
  tenant?: string;
  /** The caller's Authorization header, for an API process that forwards changes to the alerter. */
  authorization?: string;
}

/** What the API needs from the alerting stage and the analytics store. */
export interface AlertsApi {
  list(filter: AlertFilter & { silenced?: boolean }): Promise<Page<Alert>>;
  get(alertId: string, tenant?: string): Promise<Alert | null>;
  /** Verdicts by id (an alert's samples), confined to `tenant` when given. */
  verdicts(ids: readonly string[], tenant: string, within: { from: number; to: number }): Promise<Verdict[]>;
  /** Delivery status of the alert's notifications, per sink (without the alert snapshots). */
  deliveries(alertId: string, tenant: string): Promise<Omit<AlertDelivery, 'alert'>[]>;
  /** Throws ApiError NOT_FOUND / CONFLICT as appropriate. */
  acknowledge(alertId: string, caller: AlertCaller): Promise<Alert>;
  resolve(alertId: string, caller: AlertCaller): Promise<Alert>;
  acknowledgeMany(alertIds: readonly string[], caller: AlertCaller): Promise<BulkAckResult[]>;
  listSilences(query: { tenant?: string; active?: boolean }): Promise<SilenceView[]>;
  createSilence(input: Omit<SilenceInput, 'starts_at' | 'created_by'> & { starts_at: number }, caller: AlertCaller): Promise<SilenceView>;
  /** Ends a silence now; NOT_FOUND for an unknown id or another tenant's silence. */
  expireSilence(silenceId: string, caller: AlertCaller): Promise<SilenceView>;
}

const AlertQuery = z.strictObject({
  status: z.enum(AlertStatuses).optional(),
  severity: z.enum(Severities).optional(),
  policy_id: Name.optional(),
  policy_type: Name.optional(),
  agent_id: z.string().min(1).max(256).optional(),
  tenant: TenantParam.optional(),
  silenced: Bool.optional(),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});

const AlertId = z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/, 'must be a 32-character alert id') });
const ActorBody = z.strictObject({ by: z.string().min(1).max(256).optional(), comment: z.string().max(2000).optional() }).optional();
const BulkAckBody = z.strictObject({
  ids: z.array(z.string().regex(/^[0-9a-f]{32}$/, 'must be a 32-character alert id')).min(1).max(1000),
  by: z.string().min(1).max(256).optional(),
});
const SilenceId = z.strictObject({ id: z.string().regex(/^[0-9A-Za-z-]{8,64}$/, 'must be a silence id') });
const SilenceQuery = z.strictObject({ tenant: TenantParam.optional(), active: Bool.optional() });

/** `key-id` or `Alice (key key-id)`: who made a change, never just a claimed name. */
export function actor(author: string, by: string | undefined): string {
  // A change forwarded by an API process arrives already attributed to the same key.
  if (by === undefined || by === author || by.endsWith(` (key ${author})`)) return by ?? author;
  return `${by} (key ${author})`;
}

function caller(by: string, tenant: string | undefined, authorization: string | undefined): AlertCaller {
  return { by, ...(tenant === undefined ? {} : { tenant }), ...(authorization === undefined ? {} : { authorization }) };
}

export function registerAlertRoutes(app: FastifyInstance, routes: RouteInfo[], api: AlertsApi): void {
  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/alerts',
    access: 'read',
    tag: 'alerts',
    summary: 'List alerts, newest first, with filters and cursor pagination',
    query: AlertQuery,
    handler: async ({ query, tenantScope }) => {
      const tenant = tenantScope(query.tenant);
      const { cursor, tenant: _t, ...rest } = query;
      return api.list({ ...rest, ...(tenant === undefined ? {} : { tenant }), cursor: cursor ?? null });
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/alerts/:id',
    access: 'read',
    tag: 'alerts',
    summary: 'One alert with its sampled verdicts and the delivery status of its notifications',
    params: AlertId,
    handler: async ({ params, tenantScope }) => {
      const tenant = tenantScope();
      const alert = await api.get(params.id, tenant);
      if (alert === null) throw new ApiError('AW_API_NOT_FOUND', `no alert ${params.id}`);
      const [verdicts, deliveries] = await Promise.all([
        api.verdicts(alert.verdict_ids, alert.tenant, { from: alert.first_seen, to: alert.last_seen + 1 }),
        api.deliveries(alert.alert_id, alert.tenant),
      ]);
      return { ...alert, verdicts, deliveries };
    },
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/alerts/:id/ack',
    access: 'analyst',
    tag: 'alerts',
    summary: 'Acknowledge an open alert',
    params: AlertId,
    body: ActorBody,
    handler: async ({ params, body, author, tenantScope, request }) => api.acknowledge(params.id, caller(actor(author, body?.by), tenantScope(), request.headers.authorization)),
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/alerts/:id/resolve',
    access: 'analyst',
    tag: 'alerts',
    summary: 'Resolve an open or acknowledged alert',
    params: AlertId,
    body: ActorBody,
    handler: async ({ params, body, author, tenantScope, request }) => api.resolve(params.id, caller(actor(author, body?.by), tenantScope(), request.headers.authorization)),
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/alerts/ack',
    access: 'analyst',
    tag: 'alerts',
    summary: 'Acknowledge up to 1,000 alerts at once; the answer gives each id its outcome',
    body: BulkAckBody,
    handler: async ({ body, author, tenantScope, request }) => {
      const results = await api.acknowledgeMany(body.ids, caller(actor(author, body.by), tenantScope(), request.headers.authorization));
      return { acknowledged: results.filter((r) => r.status === 'acknowledged').length, results };
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/silences',
    access: 'read',
    tag: 'alerts',
    summary: 'List silences (active only with active=true)',
    query: SilenceQuery,
    handler: async ({ query, tenantScope }) => {
      const tenant = tenantScope(query.tenant);
      return { items: await api.listSilences({ ...(tenant === undefined ? {} : { tenant }), ...(query.active === undefined ? {} : { active: query.active }) }), next_cursor: null };
    },
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/silences',
    access: 'admin',
    tag: 'alerts',
    summary: 'Silence matching alerts until a time: they are still recorded, marked silenced, and not delivered',
    body: SilenceInputSchema,
    status: 201,
    handler: async ({ body, author, tenantScope, request }) => {
      const tenant = tenantScope(body.tenant);
      const { tenant: _t, created_by, starts_at, ...rest } = body;
      return api.createSilence(
        { ...rest, ...(tenant === undefined ? {} : { tenant }), starts_at: starts_at ?? Date.now() },
        caller(actor(author, created_by), tenant, request.headers.authorization),
      );
    },
  });

  addRoute(app, routes, {
    method: 'DELETE',
    url: '/v1/silences/:id',
    access: 'admin',
    tag: 'alerts',
    summary: 'End a silence now',
    params: SilenceId,
    handler: async ({ params, author, tenantScope, request }) => api.expireSilence(params.id, caller(author, tenantScope(), request.headers.authorization)),
  });
}
