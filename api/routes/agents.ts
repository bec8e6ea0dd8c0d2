import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CapabilitySnapshotKinds, type CapabilityHistoryFilter, type CapabilitySnapshot } from '../../core/ports.js';
import type { Page } from '../../core/records.js';
import type { PendingApproval } from '../../detectors/approvals.js';
import { diffSnapshots } from '../../storage/capability-diff.js';
import type { AgentSummary } from '../../storage/clickhouse/search.js';
import { ApiError } from '../errors.js';
import { addRoute, type RouteContext, type RouteInfo } from '../route.js';
import { AgentIdParam, Cursor, Limit, Name, TenantParam, TimeParam } from './params.js';

/** An agent's overview row. */
export type AgentOverview = AgentSummary;
/** A pending (or rejected) key or capability change awaiting review. */
export type PendingChange = PendingApproval;

export interface AgentsApi {
  list(query: { tenant?: string; q?: string; limit: number; cursor?: string | null }): Promise<Page<AgentOverview>>;
  get(tenant: string, agentId: string): Promise<AgentOverview | null>;
  capabilityHistory(filter: CapabilityHistoryFilter): Promise<CapabilitySnapshot[]>;
  pending(tenant: string, agentId: string): Promise<PendingChange[]>;
  /** Approves or rejects the pending value; throws ApiError NOT_FOUND / CONFLICT. */
  review(request: { tenant: string; agent_id: string; policy_id: string; action: 'approve' | 'reject'; value: string; by: string; comment?: string }): Promise<unknown>;
}

const AgentPath = z.strictObject({ tenant: TenantParam, agent_id: AgentIdParam });
const ApprovalPath = z.strictObject({ tenant: TenantParam, agent_id: AgentIdParam, policy_id: Name });
const ListQuery = z.strictObject({
  tenant: TenantParam.optional(),
  q: z.string().min(1).max(256).optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});
const HistoryQuery = z.strictObject({
  kind: z.enum(CapabilitySnapshotKinds).optional(),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const DiffQuery = z.strictObject({
  kind: z.enum(CapabilitySnapshotKinds).default('capabilities'),
  /** Event id of the older snapshot; default: the second newest. */
  from: z.string().min(1).max(256).optional(),
  /** Event id of the newer snapshot; default: the newest. */
  to: z.string().min(1).max(256).optional(),
});
const ReviewBody = z.strictObject({
  action: z.enum(['approve', 'reject']),
  /** The pending value being reviewed, as listed by GET …/approvals (guards against approving something else). */
  value: z.string().min(1).max(1_000_000),
  comment: z.string().max(2000).optional(),
});

/** A tenant-bound key asking for another tenant's agent gets 404: it must not learn the agent exists. */
function agentTenant(ctx: RouteContext<unknown, { tenant: string }, unknown>): string {
  const bound = ctx.principal?.tenant ?? null;
  if (bound !== null && bound !== ctx.params.tenant) throw new ApiError('AW_API_NOT_FOUND', `no agent ${ctx.params.tenant}/…`);
  return ctx.params.tenant;
}

export function registerAgentRoutes(app: FastifyInstance, routes: RouteInfo[], api: AgentsApi): void {
  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/agents',
    access: 'read',
    tag: 'agents',
    summary: 'Agents seen: last seen, event counts, open alerts, current capabilities and key (q: substring of id or name)',
    query: ListQuery,
    handler: async ({ query, tenantScope }) => {
      const tenant = tenantScope(query.tenant);
      return api.list({ ...(tenant === undefined ? {} : { tenant }), ...(query.q === undefined ? {} : { q: query.q }), limit: query.limit, cursor: query.cursor ?? null });
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/agents/:tenant/:agent_id',
    access: 'read',
    tag: 'agents',
    summary: 'One agent: overview and pending approvals',
    params: AgentPath,
    handler: async (ctx) => {
      const tenant = agentTenant(ctx);
      const agent = await api.get(tenant, ctx.params.agent_id);
      if (agent === null) throw new ApiError('AW_API_NOT_FOUND', `no agent ${tenant}/${ctx.params.agent_id}`);
      return { ...agent, pending_approvals: await api.pending(tenant, ctx.params.agent_id) };
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/agents/:tenant/:agent_id/capabilities',
    access: 'read',
    tag: 'agents',
    summary: 'Capability sets and keys the agent presented over time, newest first',
    params: AgentPath,
    query: HistoryQuery,
    handler: async (ctx) => {
      const tenant = agentTenant(ctx);
      const { query } = ctx;
      const items = await api.capabilityHistory({
        tenant,
        agent_id: ctx.params.agent_id,
        limit: query.limit,
        ...(query.kind === undefined ? {} : { kind: query.kind }),
        ...(query.from === undefined ? {} : { from: query.from }),
        ...(query.to === undefined ? {} : { to: query.to }),
      });
      return { items, next_cursor: null };
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/agents/:tenant/:agent_id/capabilities/diff',
    access: 'read',
    tag: 'agents',
    summary: 'What changed between two snapshots (by event id; default the two newest of the kind)',
    params: AgentPath,
    query: DiffQuery,
    handler: async (ctx) => {
      const tenant = agentTenant(ctx);
      const { query } = ctx;
      const history = await api.capabilityHistory({ tenant, agent_id: ctx.params.agent_id, kind: query.kind, limit: 1000 });
      const pick = (id: string | undefined, fallback: number, name: string): CapabilitySnapshot => {
        const found = id === undefined ? history[fallback] : history.find((s) => s.event_id === id);
        if (found === undefined) {
          throw new ApiError('AW_API_NOT_FOUND', id === undefined ? `agent has fewer than two ${query.kind} snapshots` : `no ${query.kind} snapshot with event id ${id} (${name}) among the newest 1,000`);
        }
        return found;
      };
      const to = pick(query.to, 0, 'to');
      const from = pick(query.from, 1, 'from');
      return { from, to, diff: diffSnapshots(from, to) };
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/agents/:tenant/:agent_id/approvals',
    access: 'read',
    tag: 'agents',
    summary: 'Pending (and rejected) key rotations and capability changes of the agent',
    params: AgentPath,
    handler: async (ctx) => ({ items: await api.pending(agentTenant(ctx), ctx.params.agent_id), next_cursor: null }),
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/agents/:tenant/:agent_id/approvals/:policy_id',
    access: 'admin',
    tag: 'agents',
    summary: 'Approve or reject the pending value of a capability_drift or key_rotation policy',
    params: ApprovalPath,
    body: ReviewBody,
    handler: async (ctx) => {
      const tenant = agentTenant(ctx);
      return api.review({
        tenant,
        agent_id: ctx.params.agent_id,
        policy_id: ctx.params.policy_id,
        action: ctx.body.action,
        value: ctx.body.value,
        by: ctx.author,
        ...(ctx.body.comment === undefined ? {} : { comment: ctx.body.comment }),
      });
    },
  });
}
