import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { compileGlobs } from '../../core/glob.js';
import type { PolicyAdmin, PolicyView } from '../../detectors/policy-admin.js';
import { PolicyAdminError } from '../../detectors/policy-admin.js';
import type { PolicyVersionRecord } from '../../storage/clickhouse/policy-versions.js';
import { ApiError } from '../errors.js';
import { addRoute, type RouteInfo } from '../route.js';
import { Name } from './params.js';

/** The dry-run answer: what agentwatch would decide for one event. */
export interface DryRunResult {
  /** Effective decision under the document's mode. */
  decision: string;
  /** What strict mode would decide. */
  would_decide: string;
  mode: string;
  /** Policies whose scope covers the event, fired or not. */
  evaluated: string[];
  /** Each policy that fired, with its reason. */
  matched: { policy_id: string; policy_type: string; severity: string; action: string; decision: string; would_decide: string; reason: string; evidence: unknown; exception: string }[];
  /** Which document judged: the running version or the candidate. */
  policy_source: { kind: 'running'; version: number } | { kind: 'candidate' };
  state: 'fresh';
}

export interface PoliciesApi {
  admin: PolicyAdmin;
  /** Judges one event against the running document or a candidate, on fresh state; changes nothing. */
  dryRun(event: unknown, candidate: unknown): Promise<DryRunResult>;
}

/** Largest policy document or policy a request may carry (the default document is ~10 KiB). */
const POLICY_BODY_LIMIT = 1024 * 1024;

const PolicyIdParams = z.strictObject({ id: Name });
const VersionParams = z.strictObject({ version: z.coerce.number().int().min(1) });
const ChangeQuery = z.strictObject({
  comment: z.string().max(2000).optional(),
  expected_version: z.coerce.number().int().min(1).optional(),
});
const PolicyBody = z.record(z.string(), z.unknown());
const ToggleBody = z.strictObject({ enabled: z.boolean() });
const RollbackBody = z.strictObject({ version: z.number().int().min(1) });
const ModeBody = z.strictObject({ mode: z.enum(['monitoring', 'strict']) });
const VersionsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.coerce.number().int().min(1).optional(),
});
/** A whole document: a JSON object, or YAML/JSON text (Content-Type application/yaml). */
const DocumentBody = z.union([z.record(z.string(), z.unknown()), z.string().min(1).max(POLICY_BODY_LIMIT)]);
const DryRunBody = z.strictObject({
  event: z.unknown(),
  /** A candidate document (object or YAML text) to judge with instead of the running one. */
  policies: DocumentBody.optional(),
});

function versionMeta(record: PolicyVersionRecord): Omit<PolicyVersionRecord, 'document'> {
  const { document: _document, ...meta } = record;
  return meta;
}

function appliesToTenant(policy: PolicyView, tenant: string | undefined): boolean {
  if (tenant === undefined || policy.match?.tenants === undefined) return true;
  return compileGlobs(policy.match.tenants)(tenant);
}

export function registerPolicyRoutes(app: FastifyInstance, routes: RouteInfo[], api: PoliciesApi): void {
  const { admin } = api;
  const visible = (id: string, tenant: string | undefined): PolicyView => {
    const policy = admin.getPolicy(id);
    if (policy === undefined || !appliesToTenant(policy, tenant)) throw new ApiError('AW_API_NOT_FOUND', `no policy ${id}`);
    return policy;
  };
  const changed = (record: PolicyVersionRecord, message: string, policyId?: string) => ({
    message,
    version: versionMeta(record),
    ...(policyId === undefined ? {} : { policy: admin.getPolicy(policyId) ?? null }),
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/policies',
    access: 'read',
    tag: 'policies',
    summary: 'List the policies in force (a tenant-bound key sees those that apply to its tenant)',
    handler: async ({ tenantScope }) => {
      const tenant = tenantScope();
      const items = admin.listPolicies().filter((p) => appliesToTenant(p, tenant));
      const { version, mode } = admin.version;
      return { items, total: items.length, version, mode, timezone: admin.document.timezone, next_cursor: null };
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/policies/:id',
    access: 'read',
    tag: 'policies',
    summary: 'One policy',
    params: PolicyIdParams,
    handler: async ({ params, tenantScope }) => ({ policy: visible(params.id, tenantScope()), version: admin.version.version }),
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/policies',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Create a policy (a new document version)',
    query: ChangeQuery,
    body: PolicyBody,
    bodyLimit: POLICY_BODY_LIMIT,
    status: 201,
    handler: async ({ body, query, author }) => {
      const record = await admin.create(body, { author, ...query });
      return changed(record, `policy ${String(body.id)} created`, String(body.id));
    },
  });

  addRoute(app, routes, {
    method: 'PUT',
    url: '/v1/policies/:id',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Replace a policy definition (a policy from an included pack gets an override)',
    params: PolicyIdParams,
    query: ChangeQuery,
    body: PolicyBody,
    bodyLimit: POLICY_BODY_LIMIT,
    handler: async ({ params, body, query, author }) => {
      if (body.id !== undefined && body.id !== params.id) throw new ApiError('AW_API_VALIDATION', `body id ${String(body.id)} differs from the path id ${params.id}`);
      return changed(await admin.update(params.id, body, { author, ...query }), `policy ${params.id} updated`, params.id);
    },
  });

  addRoute(app, routes, {
    method: 'PATCH',
    url: '/v1/policies/:id',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Change some fields of a policy (config merged one level deep)',
    params: PolicyIdParams,
    query: ChangeQuery,
    body: PolicyBody,
    bodyLimit: POLICY_BODY_LIMIT,
    handler: async ({ params, body, query, author }) => {
      if (body.id !== undefined && body.id !== params.id) throw new ApiError('AW_API_VALIDATION', 'the id of a policy cannot change');
      return changed(await admin.patch(params.id, body, { author, ...query }), `policy ${params.id} updated`, params.id);
    },
  });

  addRoute(app, routes, {
    method: 'PATCH',
    url: '/v1/policies/:id/toggle',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Enable or disable a policy',
    params: PolicyIdParams,
    query: ChangeQuery,
    body: ToggleBody,
    handler: async ({ params, body, query, author }) =>
      changed(await admin.toggle(params.id, body.enabled, { author, ...query }), `policy ${params.id} ${body.enabled ? 'enabled' : 'disabled'}`, params.id),
  });

  addRoute(app, routes, {
    method: 'DELETE',
    url: '/v1/policies/:id',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Delete a policy of the document (one from an included pack can only be disabled)',
    params: PolicyIdParams,
    query: ChangeQuery,
    handler: async ({ params, query, author }) => ({ ...changed(await admin.remove(params.id, { author, ...query }), `policy ${params.id} deleted`), policy_id: params.id }),
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/policies/:id/versions',
    access: 'read',
    tag: 'policies',
    summary: "A policy's history: the document versions that changed it, with its definition at each (null: removed)",
    params: PolicyIdParams,
    query: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
    handler: async ({ params, query, tenantScope }) => {
      const tenant = tenantScope();
      if (tenant !== undefined) visible(params.id, tenant);
      const items = await admin.policyHistory(params.id, query.limit);
      if (items.length === 0 && admin.getPolicy(params.id) === undefined) throw new ApiError('AW_API_NOT_FOUND', `no policy ${params.id} in any version`);
      return { items: items.map((i) => ({ version: versionMeta(i.version), policy: i.policy })), next_cursor: null };
    },
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/policies/:id/rollback',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Restore one policy to its definition at a version (a new version)',
    params: PolicyIdParams,
    query: ChangeQuery,
    body: RollbackBody,
    handler: async ({ params, body, query, author }) =>
      changed(await admin.rollbackPolicy(params.id, body.version, { author, ...query }), `policy ${params.id} restored to version ${body.version}`, params.id),
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/policies/validate',
    access: 'analyst',
    tag: 'policies',
    summary: 'Validate a whole document (JSON object or YAML text) without applying it; problems name their path',
    body: DocumentBody,
    bodyLimit: POLICY_BODY_LIMIT,
    handler: async ({ body }) => {
      try {
        const { document } = admin.parse(body, 'candidate document');
        return { valid: true, problems: [], mode: document.mode, policies: document.policies.length };
      } catch (error) {
        if (error instanceof PolicyAdminError) return { valid: false, problems: error.problems, message: error.message };
        throw error;
      }
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/policy-document',
    access: 'read',
    global: true,
    tag: 'policies',
    summary: 'The whole document in force, as written (packs as include references)',
    handler: async () => ({ version: versionMeta(admin.version), document: admin.source }),
  });

  addRoute(app, routes, {
    method: 'PUT',
    url: '/v1/policy-document',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Replace the whole document (JSON object, or YAML with Content-Type application/yaml)',
    query: ChangeQuery,
    body: DocumentBody,
    bodyLimit: POLICY_BODY_LIMIT,
    handler: async ({ body, query, author }) => changed(await admin.replace(body, { author, ...query }), 'policy document replaced'),
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/policy-versions',
    access: 'read',
    global: true,
    tag: 'policies',
    summary: 'Versions of the document, newest first (page with before=<version>)',
    query: VersionsQuery,
    handler: async ({ query }) => {
      const items = await admin.listVersions(query.limit, query.before);
      const last = items.at(-1);
      return { items: items.map(versionMeta), next_cursor: items.length === query.limit && last !== undefined && last.version > 1 ? String(last.version) : null };
    },
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/policy-versions/:version',
    access: 'read',
    global: true,
    tag: 'policies',
    summary: 'One version with its document',
    params: VersionParams,
    handler: async ({ params }) => {
      const record = await admin.getVersion(params.version);
      if (record === null) throw new ApiError('AW_API_NOT_FOUND', `no policy version ${params.version}`);
      return { ...versionMeta(record), document: JSON.parse(record.document) as unknown };
    },
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/policy-versions/:version/rollback',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Roll the whole document back to a version (stored as a new version)',
    params: VersionParams,
    query: ChangeQuery,
    handler: async ({ params, query, author }) => changed(await admin.rollback(params.version, { author, ...query }), `document rolled back to version ${params.version}`),
  });

  addRoute(app, routes, {
    method: 'GET',
    url: '/v1/mode',
    access: 'read',
    tag: 'policies',
    summary: 'The global enforcement mode (monitoring: decisions are recorded, every event allowed; strict: enforced)',
    handler: async () => ({ mode: admin.document.mode, version: admin.version.version }),
  });

  addRoute(app, routes, {
    method: 'PUT',
    url: '/v1/mode',
    access: 'admin',
    global: true,
    tag: 'policies',
    summary: 'Switch the global enforcement mode',
    query: ChangeQuery,
    body: ModeBody,
    handler: async ({ body, query, author }) => ({ mode: body.mode, ...changed(await admin.setMode(body.mode, { author, ...query }), `mode set to ${body.mode}`) }),
  });

  addRoute(app, routes, {
    method: 'POST',
    url: '/v1/dry-run',
    access: 'analyst',
    tag: 'policies',
    summary: 'Judge a sample event against the running document or a candidate; nothing is stored or changed',
    body: DryRunBody,
    bodyLimit: POLICY_BODY_LIMIT,
    // A candidate document runs in a worker thread for up to 5 s.
    budget: 'costly',
    handler: async ({ body, tenantScope }) => {
      const tenant = tenantScope();
      if (tenant !== undefined && typeof body.event === 'object' && body.event !== null) {
        const eventTenant = (body.event as { tenant?: unknown }).tenant ?? 'default';
        if (eventTenant !== tenant) throw new ApiError('AW_API_FORBIDDEN', `this key is bound to tenant ${tenant}`);
      }
      return api.dryRun(body.event, body.policies);
    },
  });
}
