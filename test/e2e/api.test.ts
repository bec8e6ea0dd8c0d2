/**
 * The analyst and admin API end to end, on an embedded pipeline (real
 * ClickHouse engine, default policies): every route's role matrix, tenant
 * isolation, validation and injection refusals, policy versions reaching the
 * worker, dry-run, alerts and silences, search, agents and approvals, SQL.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers are inspected field by field */
import { Validator } from '@seriousme/openapi-schema-validator';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { auth, sampleRouteUrl, startTestPipeline, testApiKeys, testConfig, type TestKey } from '../support/pipeline.js';

const T0 = Date.parse('2026-11-24T10:00:00+01:00');
let seq = 0;
const ev = (tenant: string, agent: string, name: string, extra: Record<string, unknown> = {}, minutes = 0) => ({
  event_id: `api-${tenant}-${agent}-${seq++}`,
  time: T0 + minutes * 60_000 + seq,
  tenant,
  agent: { id: agent, name },
  type: 'api_call',
  ...extra,
});

let p: EmbeddedPipeline;

async function call(method: string, url: string, key: TestKey | null, payload?: unknown, headers: Record<string, string> = {}) {
  const res = await p.app.inject({
    method: method as 'GET',
    url,
    headers: { ...(key === null ? {} : auth(key)), ...headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  return { status: res.statusCode, body: res.headers['content-type']?.toString().includes('json') ? (res.json() as Record<string, any>) : ({ text: res.body } as Record<string, any>) };
}

async function ingest(events: unknown[], key: TestKey = 'admin') {
  const res = await call('POST', '/v1/events', key, events);
  await p.settle();
  return res;
}

beforeAll(async () => {
  // The role matrix sends ~90 keyless or wrong-key requests from one address in seconds (failed-auth budgets: api-security.test.ts).
  p = await startTestPipeline(testConfig({ api: { keys: testApiKeys, rate_limit: { auth_failures_per_window: 10_000 } } }));
  await p.app.ready();
  await ingest([
    ev('acme', 'a-shadow', 'shadow-gpt'),
    ev('acme', 'a-shadow', 'shadow-gpt'),
    ev('globex', 'g-shadow', 'shadow-gpt'),
    ev('acme', 'a-cap', 'cursor', { type: 'capability_change', capabilities: ['read_file'] }),
    ev('acme', 'a-cap', 'cursor', { type: 'capability_change', capabilities: ['read_file', 'Bash'] }, 1),
    ev('acme', 'a-key', 'cursor', { type: 'key_rotation', key: { fingerprint: 'SHA256:first', algorithm: 'ed25519' } }),
    ev('acme', 'a-key', 'cursor', { type: 'key_rotation', key: { fingerprint: 'SHA256:second', algorithm: 'ed25519' } }, 1),
  ]);
}, 120_000);

afterAll(async () => {
  await p?.stop();
});

describe('authentication and roles', () => {
  const roleKeys: TestKey[] = ['admin', 'analyst', 'ingest'];
  const admitted: Record<string, TestKey[]> = { ingest: ['admin', 'ingest'], read: ['admin', 'analyst'], analyst: ['admin', 'analyst'], admin: ['admin'] };

  it('every route answers 401 without a key or with a wrong one, 403 to a role it does not admit, and lets admitted roles through', async () => {
    const routes = [...p.app.routesInfo, { method: 'POST' as const, url: '/v1/events', access: 'ingest' as const, global: false }];
    expect(routes.length).toBeGreaterThan(35);
    for (const route of routes) {
      const url = sampleRouteUrl(route.url);
      if (route.access === 'public') {
        // Public: no key needed (/readyz is 503 here only because the test app does not listen).
        expect([401, 403], `${route.method} ${route.url}`).not.toContain((await call(route.method, url, null)).status);
        continue;
      }
      const none = await call(route.method, url, null);
      expect(none.status, `${route.method} ${route.url} without key`).toBe(401);
      expect(none.body).toMatchObject({ code: 'AW_API_UNAUTHORIZED' });
      const wrong = await p.app.inject({ method: route.method, url, headers: { authorization: 'Bearer awk_not-a-key' } });
      expect(wrong.statusCode, `${route.method} ${route.url} bad key`).toBe(401);
      for (const key of roleKeys) {
        const res = await call(route.method, url, key);
        if (admitted[route.access]!.includes(key)) {
          expect([401, 403], `${route.method} ${route.url} as ${key}: ${JSON.stringify(res.body)}`).not.toContain(res.status);
          expect(res.status, `${route.method} ${route.url} as ${key}`).toBeLessThan(500);
        } else {
          expect(res.status, `${route.method} ${route.url} as ${key}`).toBe(403);
          expect(res.body).toMatchObject({ code: 'AW_API_FORBIDDEN' });
        }
      }
      if (route.global && route.access === 'admin') {
        expect((await call(route.method, url, 'acmeAdmin')).status, `${route.method} ${route.url} as tenant admin`).toBe(403);
      }
    }
  }, 120_000);

  it('a malformed Authorization header is 401, never a crash', async () => {
    for (const header of ['Basic abc', 'Bearer', 'Bearer a b', `Bearer ${'x'.repeat(5000)}`]) {
      const res = await p.app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: header } });
      expect(res.statusCode).toBe(401);
    }
  });

  it('an ingest key bound to a tenant can only send its own tenant’s events', async () => {
    const res = await ingest([ev('acme', 'a-1', 'cursor'), ev('globex', 'g-1', 'cursor')], 'acmeIngest');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 1, rejected: 1 });
    expect(res.body.results[1].reason).toMatch(/not the tenant of this API key/);
  });
});

describe('OpenAPI and metrics', () => {
  it('serves a valid OpenAPI 3.1 document listing every route', async () => {
    const res = await call('GET', '/docs/json', null);
    expect(res.status).toBe(200);
    const validator = new Validator();
    const result = await validator.validate(res.body);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const paths = Object.keys(res.body.paths);
    for (const route of p.app.routesInfo) expect(paths).toContain(route.url.replace(/:([a-z_]+)/g, '{$1}'));
    expect(paths).toContain('/v1/events');
    const ui = await p.app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBeLessThan(400);
  });

  it('serves Prometheus metrics to a read key', async () => {
    expect((await call('GET', '/metrics', null)).status).toBe(401);
    const res = await call('GET', '/metrics', 'analyst');
    expect(res.status).toBe(200);
    expect(res.body.text).toMatch(/agentwatch_worker_events_total \d+/);
    expect(res.body.text).toMatch(/agentwatch_policy_version 1/);
    expect(res.body.text).toMatch(/agentwatch_http_request_duration_seconds_bucket/);
  });
});

describe('policies', () => {
  it('lists and gets policies; a tenant-bound key sees only what applies to its tenant', async () => {
    const list = await call('GET', '/v1/policies', 'analyst');
    expect(list.status).toBe(200);
    expect(list.body.items.length).toBe(19);
    expect(list.body.version).toBe(1);
    const one = await call('GET', '/v1/policies/approved-agents', 'analyst');
    expect(one.body.policy).toMatchObject({ id: 'approved-agents', type: 'unknown_agent', origin: 'document' });
    expect((await call('GET', '/v1/policies/nope', 'analyst')).status).toBe(404);
    expect((await call('GET', "/v1/policies/x' OR 1=1", 'analyst')).status).toBe(400);
  });

  it('create, update, patch, toggle and delete each make a version; bad input names its path', async () => {
    const bad = await call('POST', '/v1/policies', 'admin', { id: 'egress-watch', type: 'unauthorized_api', config: { allowed_domains: 'nope' } });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('AW_API_POLICY_INVALID');
    expect(bad.body.details[0].path).toMatch(/policies\[\d+\]\.config\.allowed_domains/);
    const unknown = await call('POST', '/v1/policies', 'admin', { id: 'x', type: 'no_such_type' });
    expect(unknown.status).toBe(400);

    const created = await call('POST', '/v1/policies?comment=ticket-1', 'admin', { id: 'egress-watch', type: 'unauthorized_api', severity: 'low', config: { allowed_domains: ['*.example.com'] } });
    expect(created.status).toBe(201);
    expect(created.body.version).toMatchObject({ version: 2, action: 'create', author: 'admin', comment: 'ticket-1', changed: ['egress-watch'] });
    expect((await call('POST', '/v1/policies', 'admin', { id: 'egress-watch', type: 'unauthorized_api' })).status).toBe(409);

    const updated = await call('PUT', '/v1/policies/egress-watch', 'admin', { type: 'unauthorized_api', severity: 'high', config: { allowed_domains: ['*.example.org'] } });
    expect(updated.status).toBe(200);
    expect(updated.body.policy).toMatchObject({ severity: 'high', config: { allowed_domains: ['*.example.org'] } });
    const patched = await call('PATCH', '/v1/policies/egress-watch', 'admin', { description: 'watch egress' });
    expect(patched.body.policy).toMatchObject({ description: 'watch egress', severity: 'high' });
    const toggled = await call('PATCH', '/v1/policies/egress-watch/toggle', 'admin', { enabled: false });
    expect(toggled.body).toMatchObject({ message: 'policy egress-watch disabled', policy: { enabled: false } });
    expect((await call('PATCH', '/v1/policies/egress-watch/toggle', 'admin', { enabled: 'no' })).status).toBe(400);

    const history = await call('GET', '/v1/policies/egress-watch/versions', 'analyst');
    expect(history.body.items.map((i: any) => i.version.action)).toEqual(['toggle', 'update', 'update', 'create']);
    const stale = await call('DELETE', '/v1/policies/egress-watch?expected_version=2', 'admin');
    expect(stale.status).toBe(409);
    const deleted = await call('DELETE', '/v1/policies/egress-watch', 'admin');
    expect(deleted.body).toMatchObject({ policy_id: 'egress-watch', version: { action: 'delete' } });
    expect((await call('GET', '/v1/policies/egress-watch', 'admin')).status).toBe(404);

    // Back to the definition it had at version 3 (the update), as a new version.
    const restored = await call('POST', '/v1/policies/egress-watch/rollback', 'admin', { version: 3 });
    expect(restored.body.policy).toMatchObject({ severity: 'high', enabled: true });
    await call('DELETE', '/v1/policies/egress-watch', 'admin');
  });

  it('validates a whole document without applying it', async () => {
    const good = await call('POST', '/v1/policies/validate', 'analyst', { version: 1, mode: 'strict', include: ['pack:strict'] });
    expect(good.body).toMatchObject({ valid: true, mode: 'strict' });
    const bad = await call('POST', '/v1/policies/validate', 'analyst', 'version: 1\npolicies:\n  - id: a\n    type: rate_spike\n    config: { window_minutes: -1 }\n', { 'content-type': 'application/yaml' });
    expect(bad.body.valid).toBe(false);
    expect(bad.body.problems[0].path).toBe('policies[0].config.window_minutes');
    // A document from the API cannot make the process read files.
    const sneaky = await call('POST', '/v1/policies/validate', 'analyst', { version: 1, include: ['/etc/passwd'] });
    expect(sneaky.body.valid).toBe(false);
  });

  it('a tenant-bound admin cannot change the shared document', async () => {
    const res = await call('PUT', '/v1/mode', 'acmeAdmin', { mode: 'strict' });
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/shared by all tenants/);
    expect((await call('PUT', '/v1/mode', 'analyst', { mode: 'strict' })).status).toBe(403);
  });
});

describe('policy changes reach the running worker', () => {
  it('switching the mode and disabling a policy change decisions within 5 s; rollback restores them', async () => {
    const shadow = (id: string) => ({ event_id: id, time: T0 + 3_600_000, tenant: 'acme', agent: { id: 'a-mode', name: 'shadow-gpt' }, type: 'api_call' });
    const decisionOf = async (id: string) => {
      await ingest([shadow(id)]);
      const audit = await call('GET', `/v1/audit?agent_id=a-mode&limit=1000`, 'analyst');
      return audit.body.items.find((r: any) => r.event_id === id) as { decision: string; matched_policies: string[] };
    };
    expect(await decisionOf('mode-0')).toMatchObject({ decision: 'allow', matched_policies: expect.arrayContaining(['approved-agents']) });
    const before = (await call('GET', '/v1/mode', 'analyst')).body.version as number;

    const started = Date.now();
    const strict = await call('PUT', '/v1/mode', 'admin', { mode: 'strict' });
    expect(strict.status).toBe(200);
    await waitUntil(() => p.engine().mode === 'strict', 5_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await decisionOf('mode-1')).toMatchObject({ decision: 'deny' });

    await call('PATCH', '/v1/policies/approved-agents/toggle', 'admin', { enabled: false });
    await waitUntil(() => !p.engine().policies.some((c) => c.policy.id === 'approved-agents'), 5_000);
    expect((await decisionOf('mode-2')).matched_policies).not.toContain('approved-agents');

    const rollback = await call('POST', `/v1/policy-versions/${before}/rollback`, 'admin');
    expect(rollback.body.version).toMatchObject({ action: 'rollback' });
    await waitUntil(() => p.engine().mode === 'monitoring' && p.engine().policies.some((c) => c.policy.id === 'approved-agents'), 5_000);
    expect(await decisionOf('mode-3')).toMatchObject({ decision: 'allow', matched_policies: expect.arrayContaining(['approved-agents']) });

    const versions = await call('GET', '/v1/policy-versions?limit=3', 'analyst');
    expect(versions.body.items[0]).toMatchObject({ action: 'rollback', author: 'admin' });
    const document = await call('GET', `/v1/policy-versions/${before}`, 'analyst');
    expect(document.body.document.version).toBe(1);
  });

  it('replaces the whole document from YAML and refuses a broken one, keeping the running version', async () => {
    const current = await call('GET', '/v1/policy-document', 'analyst');
    const version = current.body.version.version as number;
    const broken = await call('PUT', '/v1/policy-document', 'admin', 'version: 1\npolicies: [ { id: a, type: rate_spike, config: { window_minutes: 0 } } ]\n', { 'content-type': 'application/yaml' });
    expect(broken.status).toBe(400);
    expect(broken.body.details[0].path).toBe('policies[0].config.window_minutes');
    expect((await call('GET', '/v1/policy-document', 'analyst')).body.version.version).toBe(version);
  });
});

describe('dry-run', () => {
  it('judges a sample event against the running document or a candidate, storing nothing', async () => {
    const verdictsBefore = (await call('GET', '/v1/verdicts?limit=1000', 'analyst')).body.items.length;
    const event = { event_id: 'dry-1', time: T0, tenant: 'acme', agent: { id: 'dry', name: 'shadow-gpt' }, type: 'api_call' };
    const running = await call('POST', '/v1/dry-run', 'analyst', { event });
    expect(running.status).toBe(200);
    expect(running.body).toMatchObject({ decision: 'allow', would_decide: 'deny', mode: 'monitoring', policy_source: { kind: 'running' }, state: 'fresh' });
    expect(running.body.matched.map((m: any) => m.policy_id)).toContain('approved-agents');
    expect(running.body.matched[0].reason).toMatch(/shadow-gpt/);

    const candidate = { version: 1, mode: 'strict', policies: [{ id: 'only-egress', type: 'unauthorized_api', config: { allowed_domains: ['*.example.com'] } }] };
    const other = await call('POST', '/v1/dry-run', 'analyst', { event: { ...event, network: { domain: 'evil.test' } }, policies: candidate });
    expect(other.body).toMatchObject({ mode: 'strict', policy_source: { kind: 'candidate' }, evaluated: ['only-egress'] });
    expect(other.body.matched).toHaveLength(1);

    expect((await call('POST', '/v1/dry-run', 'analyst', { event: { ...event, type: 'teleport' } })).status).toBe(400);
    expect((await call('POST', '/v1/dry-run', 'analyst', { event, policies: { version: 2 } })).status).toBe(400);
    expect((await call('POST', '/v1/dry-run', 'acmeAnalyst', { event: { ...event, tenant: 'globex' } })).status).toBe(403);
    await p.settle();
    expect((await call('GET', '/v1/verdicts?limit=1000', 'analyst')).body.items.length).toBe(verdictsBefore);
  });
});

describe('alerts and silences', () => {
  it('filters, pages and isolates tenants', async () => {
    const all = await call('GET', '/v1/alerts?policy_id=approved-agents', 'analyst');
    expect(new Set(all.body.items.map((a: any) => a.tenant))).toEqual(new Set(['acme', 'globex']));
    const acme = await call('GET', '/v1/alerts?policy_id=approved-agents', 'acmeAnalyst');
    expect(acme.body.items.length).toBeGreaterThan(0);
    expect(acme.body.items.every((a: any) => a.tenant === 'acme')).toBe(true);
    expect((await call('GET', '/v1/alerts?tenant=globex', 'acmeAnalyst')).status).toBe(403);
    const globexAlert = all.body.items.find((a: any) => a.tenant === 'globex');
    expect((await call('GET', `/v1/alerts/${globexAlert.alert_id}`, 'acmeAnalyst')).status).toBe(404);
    expect((await call('POST', `/v1/alerts/${globexAlert.alert_id}/ack`, 'acmeAnalyst')).status).toBe(404);
    const page1 = await call('GET', '/v1/alerts?limit=1', 'analyst');
    expect(page1.body.items).toHaveLength(1);
    const page2 = await call('GET', `/v1/alerts?limit=1&cursor=${encodeURIComponent(page1.body.next_cursor)}`, 'analyst');
    expect(page2.body.items[0].alert_id).not.toBe(page1.body.items[0].alert_id);
    for (const bad of ['severity=urgent', "agent_id=' OR 1=1 --&limit=5", 'cursor=%27%3B%20DROP%20TABLE%20alerts', 'from=yesterday', 'policy_id=a%27b', 'silenced=maybe']) {
      const res = await call('GET', `/v1/alerts?${bad}`, 'analyst');
      if (bad.startsWith('agent_id')) expect(res.body.items, bad).toEqual([]);
      else expect(res.status, bad).toBe(400);
    }
  });

  it('shows an alert with its verdicts; bulk-acknowledges with an outcome per id', async () => {
    const acme = (await call('GET', '/v1/alerts?tenant=acme&status=open', 'analyst')).body.items as any[];
    const one = await call('GET', `/v1/alerts/${acme[0].alert_id}`, 'analyst');
    expect(one.body.verdicts.length).toBeGreaterThan(0);
    expect(one.body.verdicts[0]).toMatchObject({ tenant: 'acme', policy_id: acme[0].policy_id });
    const globex = (await call('GET', '/v1/alerts?tenant=globex', 'analyst')).body.items as any[];
    const ids = [acme[0].alert_id, globex[0].alert_id, 'f'.repeat(32)];
    const bulk = await call('POST', '/v1/alerts/ack', 'acmeAnalyst', { ids, by: 'ana' });
    expect(bulk.status).toBe(200);
    expect(bulk.body.results.map((r: any) => r.status)).toEqual(['acknowledged', 'not_found', 'not_found']);
    expect((await call('GET', `/v1/alerts/${acme[0].alert_id}`, 'analyst')).body).toMatchObject({ status: 'acknowledged', acknowledged_by: 'ana (key acmeAnalyst)' });
    expect((await call('POST', '/v1/alerts/ack', 'analyst', { ids: [] })).status).toBe(400);
    expect((await call('POST', '/v1/alerts/ack', 'analyst', { ids: ['nope'] })).status).toBe(400);
  });

  it('silences matching alerts until a time, for one tenant', async () => {
    const created = await call('POST', '/v1/silences', 'acmeAdmin', {
      matchers: { agent_id: 'a-silenced*' },
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      comment: 'maintenance window',
      created_by: 'bob',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenant: 'acme', comment: 'maintenance window' });
    await ingest([ev('acme', 'a-silenced-1', 'shadow-gpt'), ev('globex', 'a-silenced-1', 'shadow-gpt')]);
    const acme = await call('GET', '/v1/alerts?agent_id=a-silenced-1&tenant=acme', 'analyst');
    expect(acme.body.items[0].silenced_by).toBe(created.body.silence_id);
    const globex = await call('GET', '/v1/alerts?agent_id=a-silenced-1&tenant=globex', 'analyst');
    expect(globex.body.items[0].silenced_by).toBe('');
    expect((await call('GET', '/v1/alerts?silenced=true', 'analyst')).body.items.map((a: any) => a.agent_id)).toEqual(['a-silenced-1']);
    const listed = await call('GET', '/v1/silences?active=true', 'acmeAnalyst');
    expect(listed.body.items.map((s: any) => s.silence_id)).toContain(created.body.silence_id);
    expect((await call('GET', '/v1/silences?tenant=globex', 'acmeAnalyst')).status).toBe(403);
    expect((await call('POST', '/v1/silences', 'admin', { matchers: {}, ends_at: Date.now() + 1000, comment: 'x' })).status).toBe(400);
    expect((await call('POST', '/v1/silences', 'admin', { matchers: { agent_id: 'x' }, ends_at: Date.now() + 1000 })).status).toBe(400);
    const expired = await call('DELETE', `/v1/silences/${created.body.silence_id}`, 'acmeAdmin');
    expect(expired.status).toBe(200);
    expect((await call('GET', '/v1/silences?active=true', 'analyst')).body.items.map((s: any) => s.silence_id)).not.toContain(created.body.silence_id);
  });
});

describe('verdicts and audit search', () => {
  it('filters by agent, policy, decision and time; pages with cursors; isolates tenants', async () => {
    const v = await call('GET', '/v1/verdicts?policy_id=approved-agents&agent_id=a-shadow', 'analyst');
    expect(v.body.items.length).toBe(2);
    expect(v.body.items.every((r: any) => r.policy_id === 'approved-agents' && r.agent_id === 'a-shadow')).toBe(true);
    const page = await call('GET', '/v1/verdicts?limit=1&policy_id=approved-agents&agent_id=a-shadow', 'analyst');
    const next = await call('GET', `/v1/verdicts?limit=1&policy_id=approved-agents&agent_id=a-shadow&cursor=${encodeURIComponent(page.body.next_cursor)}`, 'analyst');
    expect(next.body.items[0].verdict_id).not.toBe(page.body.items[0].verdict_id);
    expect((await call('GET', '/v1/verdicts?cursor=garbage', 'analyst')).status).toBe(400);
    const timed = await call('GET', `/v1/verdicts?from=${T0 + 3_600_000}&to=${T0 + 7_200_000}`, 'analyst');
    expect(timed.body.items.every((r: any) => r.time >= T0 + 3_600_000 && r.time < T0 + 7_200_000)).toBe(true);

    const acme = await call('GET', '/v1/verdicts?limit=1000', 'acmeAnalyst');
    expect(acme.body.items.every((r: any) => r.tenant === 'acme')).toBe(true);
    expect((await call('GET', '/v1/verdicts?agent_id=g-shadow', 'acmeAnalyst')).body.items).toEqual([]);
    expect((await call('GET', '/v1/audit?agent_id=g-shadow', 'acmeAnalyst')).body.items).toEqual([]);
    expect((await call('GET', '/v1/audit?agent_id=g-shadow', 'analyst')).body.items.length).toBe(1);
    // The strict-mode interlude above denied one event.
    const audit = await call('GET', '/v1/audit?decision=deny', 'analyst');
    expect(audit.body.items.map((r: any) => [r.event_id, r.decision])).toEqual([['mode-1', 'deny']]);
    expect((await call('GET', '/v1/audit?policy_id=approved-agents&agent_id=a-shadow', 'analyst')).body.items).toHaveLength(2);
    for (const bad of ['decision=maybe', 'from=-1', 'limit=100000', 'policy_id=%27%29--']) {
      expect((await call('GET', `/v1/audit?${bad}`, 'analyst')).status, bad).toBe(400);
    }
    expect((await call('GET', "/v1/verdicts?agent_id=x'%20OR%20'1'='1", 'analyst')).body.items).toEqual([]);
  });
});

describe('agents and approvals', () => {
  it('gives an overview with capabilities, key and pending approvals', async () => {
    const list = await call('GET', '/v1/agents?tenant=acme', 'analyst');
    expect(list.body.items.map((a: any) => a.agent_id)).toEqual(expect.arrayContaining(['a-shadow', 'a-cap', 'a-key']));
    expect((await call('GET', '/v1/agents', 'acmeAnalyst')).body.items.every((a: any) => a.tenant === 'acme')).toBe(true);
    const cap = await call('GET', '/v1/agents/acme/a-cap', 'analyst');
    expect(cap.body).toMatchObject({ agent_id: 'a-cap', capabilities: ['Bash', 'read_file'] });
    expect(cap.body.pending_approvals).toEqual([expect.objectContaining({ policy_id: 'capability-drift', approved: ['read_file'], pending: ['Bash', 'read_file'] })]);
    const key = await call('GET', '/v1/agents/acme/a-key', 'analyst');
    expect(key.body).toMatchObject({ key_fingerprint: 'SHA256:second' });
    expect(key.body.pending_approvals).toEqual([expect.objectContaining({ policy_id: 'key-rotation', approved: 'SHA256:first', pending: 'SHA256:second' })]);
    expect((await call('GET', '/v1/agents/globex/g-shadow', 'acmeAnalyst')).status).toBe(404);
    expect((await call('GET', '/v1/agents/acme/nobody', 'analyst')).status).toBe(404);
  });

  it('shows capability history and the diff between two snapshots', async () => {
    const history = await call('GET', '/v1/agents/acme/a-cap/capabilities?kind=capabilities', 'analyst');
    expect(history.body.items).toHaveLength(2);
    const diff = await call('GET', '/v1/agents/acme/a-cap/capabilities/diff', 'analyst');
    expect(diff.body.diff).toMatchObject({ added: ['Bash'], removed: [], unchanged: false });
    const named = await call('GET', `/v1/agents/acme/a-cap/capabilities/diff?from=${history.body.items[0].event_id}&to=${history.body.items[1].event_id}`, 'analyst');
    expect(named.body.diff).toMatchObject({ added: [], removed: ['Bash'] });
    expect((await call('GET', '/v1/agents/acme/a-cap/capabilities/diff?from=nope', 'analyst')).status).toBe(404);
    expect((await call('GET', '/v1/agents/acme/a-cap/capabilities?kind=colour', 'analyst')).status).toBe(400);
  });

  it('approves a pending capability change and rejects a key: later events are judged accordingly', async () => {
    const pending = (await call('GET', '/v1/agents/acme/a-cap/approvals', 'analyst')).body.items[0];
    expect((await call('POST', '/v1/agents/acme/a-cap/approvals/capability-drift', 'analyst', { action: 'approve', value: pending.pending_value })).status).toBe(403);
    expect((await call('POST', '/v1/agents/acme/a-cap/approvals/capability-drift', 'admin', { action: 'approve', value: 'something else' })).status).toBe(409);
    expect((await call('POST', '/v1/agents/acme/a-cap/approvals/no-such-policy', 'admin', { action: 'approve', value: 'x' })).status).toBe(404);
    expect((await call('POST', '/v1/agents/acme/a-cap/approvals/capability-drift', 'admin', { action: 'maybe', value: 'x' })).status).toBe(400);
    const approved = await call('POST', '/v1/agents/acme/a-cap/approvals/capability-drift', 'admin', { action: 'approve', value: pending.pending_value });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ applied: true, action: 'approve' });
    expect((await call('GET', '/v1/agents/acme/a-cap/approvals', 'analyst')).body.items).toEqual([]);
    await ingest([ev('acme', 'a-cap', 'cursor', { type: 'capability_change', capabilities: ['read_file', 'Bash'] }, 2)]);
    const after = await call('GET', '/v1/verdicts?agent_id=a-cap&policy_id=capability-drift', 'analyst');
    expect(after.body.items).toHaveLength(1);

    const keyPending = (await call('GET', '/v1/agents/acme/a-key/approvals', 'analyst')).body.items[0];
    const rejected = await call('POST', '/v1/agents/acme/a-key/approvals/key-rotation', 'admin', { action: 'reject', value: keyPending.pending_value, comment: 'not ours' });
    expect(rejected.body).toMatchObject({ applied: true, action: 'reject' });
    await ingest([ev('acme', 'a-key', 'cursor', { type: 'key_rotation', key: { fingerprint: 'SHA256:second' } }, 3)]);
    const keyVerdicts = await call('GET', '/v1/verdicts?agent_id=a-key&policy_id=key-rotation', 'analyst');
    expect(keyVerdicts.body.items[0]).toMatchObject({ severity: 'critical', would_decide: 'deny' });
    expect(keyVerdicts.body.items[0].reason).toMatch(/rejected/);
    expect((await call('POST', '/v1/agents/globex/g-shadow/approvals/key-rotation', 'acmeAdmin', { action: 'approve', value: 'x' })).status).toBe(404);
  });
});

describe('read-only SQL', () => {
  it('runs a SELECT with bound parameters', async () => {
    const res = await call('POST', '/v1/query', 'analyst', { sql: 'SELECT agent_id, count() AS n FROM verdicts WHERE policy_id = {policy:String} GROUP BY agent_id ORDER BY agent_id', params: { policy: 'approved-agents' } });
    expect(res.status).toBe(200);
    expect(res.body.rows).toEqual(expect.arrayContaining([expect.objectContaining({ agent_id: 'a-shadow' }), expect.objectContaining({ agent_id: 'g-shadow' })]));
    expect(res.body.columns.map((c: any) => c.name)).toEqual(['agent_id', 'n']);
  });

  it('scopes a tenant-bound key to its tenant, however the query is written', async () => {
    for (const sql of [
      'SELECT DISTINCT tenant FROM verdicts',
      'SELECT DISTINCT tenant FROM (SELECT * FROM events)',
      'SELECT tenant FROM alerts UNION ALL SELECT tenant FROM audit_log',
      "SELECT DISTINCT v.tenant FROM verdicts v JOIN events e ON v.event_id = e.event_id WHERE v.tenant != 'acme' OR 1 = 1",
    ]) {
      const res = await call('POST', '/v1/query', 'acmeAnalyst', { sql });
      expect(res.status, sql).toBe(200);
      expect(new Set(res.body.rows.map((r: any) => r.tenant)), sql).toEqual(new Set(['acme']));
    }
  });

  it('refuses writes, second statements, table functions and system tables with a clear error', async () => {
    for (const sql of [
      'SELECT 1; DROP TABLE verdicts',
      'INSERT INTO verdicts SELECT * FROM verdicts',
      'ALTER TABLE verdicts DELETE WHERE 1',
      'DROP TABLE alerts',
      "SELECT * FROM file('/etc/passwd', 'LineAsString')",
      "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
      'SELECT * FROM system.tables',
      'SELECT * FROM verdicts SETTINGS additional_table_filters = {}',
      'SELECT name FROM information_schema.tables',
    ]) {
      const res = await call('POST', '/v1/query', 'analyst', { sql });
      expect(res.status, sql).toBe(400);
      expect(res.body.code, sql).toBe('AW_API_QUERY_REFUSED');
      expect(res.body.message.length, sql).toBeGreaterThan(10);
    }
    expect((await call('POST', '/v1/query', 'analyst', { sql: 'SELECT 1', params: { 'a-b': 1 } })).status).toBe(400);
    const invalid = await call('POST', '/v1/query', 'analyst', { sql: 'SELECT no_such_column FROM verdicts' });
    expect(invalid).toMatchObject({ status: 400, body: { code: 'AW_API_QUERY_INVALID' } });
    const slow = await call('POST', '/v1/query', 'analyst', { sql: 'SELECT count() FROM verdicts WHERE sleepEachRow(0.5) = 0' });
    expect(slow.status).toBe(400);
    expect((await call('POST', '/v1/query', 'ingest', { sql: 'SELECT 1' })).status).toBe(403);
    expect((await call('POST', '/v1/query', 'analyst', { sql: "SELECT count() FROM verdicts WHERE reason = 'DROP TABLE'" })).status).toBe(200);
  });
});

describe('hostile policy documents and dry-runs', () => {
  it('a document sent to the API never makes the process open a path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aw-fifo-'));
    try {
      // Opening a FIFO blocks until a writer comes: were it opened, this request would hang.
      const fifo = path.join(dir, 'pipe.yaml');
      execFileSync('mkfifo', [fifo]);
      for (const include of [fifo, '/etc/passwd', '../../etc/passwd', '/dev/zero']) {
        const res = await call('POST', '/v1/policies/validate', 'acmeAnalyst', { version: 1, include: [include] });
        expect(res.body.valid, include).toBe(false);
        expect(res.body.problems[0].message, include).toMatch(/may only include built-in packs/);
        const dry = await call('POST', '/v1/dry-run', 'analyst', { event: ev('default', 'x', 'cursor'), policies: { version: 1, include: [include] } });
        expect(dry.status, include).toBe(400);
        expect((await call('PUT', '/v1/policy-document', 'admin', { version: 1, include: [include] })).status, include).toBe(400);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cyclic, deeply nested and key-stuffed documents are refused quickly with 400', async () => {
    const started = Date.now();
    const cyclic = await call('POST', '/v1/policies/validate', 'analyst', 'version: 1\nx: &a [ *a ]\n', { 'content-type': 'application/yaml' });
    expect(cyclic.body).toMatchObject({ valid: false, problems: [{ path: '(document)' }] });
    const keys = `version: 1\n${Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join('\n')}\n`;
    const stuffed = await call('POST', '/v1/policies/validate', 'analyst', keys, { 'content-type': 'application/yaml' });
    expect(stuffed.body.valid).toBe(false);
    const duplicate = await call('POST', '/v1/policies/validate', 'analyst', 'version: 1\nmode: strict\nmode: monitoring\n', { 'content-type': 'application/yaml' });
    expect(duplicate.body.problems[0]).toMatchObject({ path: 'line 3', message: expect.stringMatching(/"mode" appears twice/) });
    expect(Date.now() - started).toBeLessThan(10_000);
    const huge = await call('POST', '/v1/policies/validate', 'analyst', `version: 1\n# ${'x'.repeat(1_100_000)}\n`, { 'content-type': 'application/yaml' });
    expect(huge.status).toBe(413);
  });

  it('a dry-run with costly patterns is stopped at its deadline while the API keeps answering', async () => {
    // Each pattern is as costly as the checker accepts (4,096 ways from each
    // position): about 0.27 s per 30,000 characters here. 24 patterns over two
    // fields are ~13 s of work, far past the 5 s deadline on any machine (8 were
    // ~4.2 s, and finished in time when the thread had a core to itself).
    const patterns = Array.from({ length: 24 }, (_, i) => ({ id: `slow_${i}`, regex: `[a-z]{1,64}[a-z]{1,64}${i}!` }));
    const candidate = { version: 1, policies: [{ id: 'slow', type: 'data_protection', config: { detect: [], patterns, max_scan_bytes: 65_536 } }] };
    const event = { ...ev('default', 'slow', 'cursor'), content: { input: 'a'.repeat(30_000), output: 'a'.repeat(30_000) } };
    const started = Date.now();
    const slow = call('POST', '/v1/dry-run', 'analyst', { event, policies: candidate });
    const health = await call('GET', '/healthz', null);
    expect(health.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1_000);
    const res = await slow;
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.code).toBe('AW_API_DRY_RUN_LIMIT');
    expect(Date.now() - started).toBeLessThan(8_000);
    const oversized = await call('POST', '/v1/dry-run', 'analyst', { event: { ...event, content: { input: 'a'.repeat(70_000) } } });
    expect(oversized.status).toBe(400);
    expect(oversized.body.message).toMatch(/ingest.max_event_bytes/);
  }, 30_000);
});

describe('every route: validation and tenant isolation', () => {
  it('rejects malformed input on every route with 400 and a path', async () => {
    const cases: [string, string, unknown?][] = [
      ['GET', '/v1/alerts?limit=0'],
      ['GET', `/v1/alerts/not-an-id`],
      ['POST', '/v1/alerts/not-an-id/ack'],
      ['POST', `/v1/alerts/${'0'.repeat(32)}/resolve`, { by: '' }],
      ['POST', '/v1/alerts/ack', { ids: 'all' }],
      ['GET', '/v1/silences?active=maybe'],
      ['POST', '/v1/silences', { matchers: { severity: ['loud'] }, ends_at: Date.now() + 1000, comment: 'x' }],
      ['DELETE', '/v1/silences/%20'],
      ['GET', '/v1/policies?unknown=1'],
      ['GET', '/v1/policies/a%20b'],
      ['POST', '/v1/policies', { id: 'x y', type: 'unknown_agent' }],
      ['PUT', '/v1/policies/approved-agents', { id: 'other', type: 'unknown_agent' }],
      ['PATCH', '/v1/policies/approved-agents', { severity: 'apocalyptic' }],
      ['PATCH', '/v1/policies/approved-agents/toggle', {}],
      ['DELETE', '/v1/policies/approved-agents?expected_version=zero'],
      ['GET', '/v1/policies/approved-agents/versions?limit=0'],
      ['POST', '/v1/policies/approved-agents/rollback', { version: 'latest' }],
      ['POST', '/v1/policies/validate', 42],
      ['PUT', '/v1/policy-document', { version: 2 }],
      ['GET', '/v1/policy-versions?before=x'],
      ['GET', '/v1/policy-versions/0'],
      ['POST', '/v1/policy-versions/abc/rollback'],
      ['PUT', '/v1/mode', { mode: 'panic' }],
      ['POST', '/v1/dry-run', { event: {} }],
      ['GET', '/v1/verdicts?decision=perhaps'],
      ['GET', '/v1/audit?to=tomorrow'],
      ['GET', '/v1/agents?limit=5000'],
      ['GET', `/v1/agents/acme/${'x'.repeat(300)}`],
      ['GET', '/v1/agents/acme/a-cap/capabilities?from=soon'],
      ['GET', '/v1/agents/acme/a-cap/capabilities/diff?kind=mood'],
      ['GET', '/v1/agents/acme/a-cap/approvals?x=1'],
      ['POST', '/v1/agents/acme/a-cap/approvals/capability-drift', { action: 'approve' }],
      ['POST', '/v1/query', { sql: '' }],
      ['POST', '/v1/events', 'not json at all'],
    ];
    for (const [method, url, body] of cases) {
      const res = await call(method, url, 'admin', body);
      expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBe(400);
      if (url === '/v1/events') {
        // Ingest answers per item: nothing accepted, each rejection with its reason.
        expect(res.body).toMatchObject({ accepted: 0, rejected: 1, results: [{ status: 'rejected', reason: expect.any(String) }] });
        continue;
      }
      expect(typeof res.body.code, `${method} ${url}`).toBe('string');
      expect(res.body.message.length, `${method} ${url}`).toBeGreaterThan(5);
    }
  });

  it('a tenant-bound key never reaches another tenant’s rows, on any route', async () => {
    // Another tenant's things: an alert, a silence, a policy scoped to it, an agent.
    const globexAlert = (await call('GET', '/v1/alerts?tenant=globex', 'admin')).body.items[0];
    const globexSilence = await call('POST', '/v1/silences', 'admin', { tenant: 'globex', matchers: { agent_id: 'g-*' }, ends_at: Date.now() + 3_600_000, comment: 'globex only' });
    expect(globexSilence.status).toBe(201);
    await call('POST', '/v1/policies', 'admin', { id: 'globex-only', type: 'unknown_agent', match: { tenants: ['globex'] }, config: { allowed_agents: ['cursor'] } });
    const forbiddenOrHidden = [
      ['GET', '/v1/alerts?tenant=globex', 403],
      ['GET', `/v1/alerts/${globexAlert.alert_id}`, 404],
      ['POST', `/v1/alerts/${globexAlert.alert_id}/resolve`, 404],
      ['POST', `/v1/silences`, 403, { tenant: 'globex', matchers: { agent_id: 'x' }, ends_at: Date.now() + 60_000, comment: 'x' }],
      ['DELETE', `/v1/silences/${globexSilence.body.silence_id}`, 404],
      ['GET', '/v1/silences?tenant=globex', 403],
      ['GET', '/v1/policies/globex-only', 404],
      ['GET', '/v1/policies/globex-only/versions', 404],
      ['GET', '/v1/verdicts?tenant=globex', 403],
      ['GET', '/v1/audit?tenant=globex', 403],
      ['GET', '/v1/agents?tenant=globex', 403],
      ['GET', '/v1/agents/globex/g-shadow', 404],
      ['GET', '/v1/agents/globex/g-shadow/capabilities', 404],
      ['GET', '/v1/agents/globex/g-shadow/capabilities/diff', 404],
      ['GET', '/v1/agents/globex/g-shadow/approvals', 404],
      ['POST', '/v1/dry-run', 403, { event: { event_id: 'x', time: T0, tenant: 'globex', agent: { id: 'g' }, type: 'api_call' } }],
    ] as const;
    for (const [method, url, status, body] of forbiddenOrHidden) {
      for (const key of ['acmeAdmin', 'acmeAnalyst'] as const) {
        if (key === 'acmeAnalyst' && (url.startsWith('/v1/silences') && method !== 'GET')) continue;
        const res = await call(method, url, key, body);
        expect(res.status, `${method} ${url} as ${key}: ${JSON.stringify(res.body)}`).toBe(status);
      }
    }
    // Lists without a tenant filter show only acme's rows.
    const own = (await call('GET', '/v1/silences', 'acmeAnalyst')).body.items as any[];
    expect(own.some((x) => x.silence_id === globexSilence.body.silence_id)).toBe(false);
    expect((await call('GET', '/v1/policies', 'acmeAnalyst')).body.items.map((x: any) => x.id)).not.toContain('globex-only');
    expect((await call('GET', '/v1/policies', 'analyst')).body.items.map((x: any) => x.id)).toContain('globex-only');
    for (const url of ['/v1/alerts?limit=1000', '/v1/verdicts?limit=1000', '/v1/audit?limit=1000', '/v1/agents?limit=1000']) {
      const items = (await call('GET', url, 'acmeAnalyst')).body.items as any[];
      expect(items.length, url).toBeGreaterThan(0);
      expect(items.every((x) => x.tenant === 'acme'), url).toBe(true);
    }
    const sql = await call('POST', '/v1/query', 'acmeAnalyst', { sql: 'SELECT count() AS n FROM verdicts WHERE tenant = {t:String}', params: { t: 'globex' } });
    expect(sql.body.rows.map((r: any) => Number(r.n))).toEqual([0]);
    expect((await call('POST', '/v1/query', 'acmeAnalyst', { sql: 'SELECT count() FROM dead_letters' })).status).toBe(400);
    await call('DELETE', '/v1/policies/globex-only', 'admin');
  });
});

async function waitUntil(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
