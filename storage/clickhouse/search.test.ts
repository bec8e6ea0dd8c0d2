import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEventInput } from '../../core/event.js';
import type { Alert, AuditRecord, Page, Verdict } from '../../core/records.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { makeEvent } from '../../test/support/events.js';
import { StorageError } from '../errors.js';
import {
  getAgent,
  listAgents,
  MAX_SEARCH_LIMIT,
  searchAudit,
  searchVerdicts,
  verdictsByIds,
  type AgentSummary,
  type AuditSearch,
  type VerdictSearch,
} from './search.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 20, 12, 0, 0, 0);
/** The `now` of the agent searches: agents' 24h windows start at NOW - 24h. */
const NOW = T0 + HOUR;
const INJECTION = "x' OR 1=1 --";

let t: TestStore;

beforeAll(async () => {
  t = await openTestStore();
  // Background merges would collapse the replayed rows on their own and hide
  // whether the queries deduplicate; with merges stopped, duplicates stay on disk.
  for (const table of ['events', 'verdicts', 'audit_log', 'alerts', 'capability_history']) {
    await t.client.command({ query: `SYSTEM STOP MERGES ${t.database}.${table}` });
  }
});

afterAll(async () => {
  await t?.close();
});

async function rawCount(table: string, tenant: string): Promise<number> {
  const result = await t.client.query({
    query: `SELECT count() AS n FROM ${t.database}.${table} WHERE tenant = {tenant:String}`,
    query_params: { tenant },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ n: number | string }>();
  return Number(row?.n);
}

async function expectStorageError(promise: Promise<unknown>, code: string): Promise<StorageError> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  expect((error as StorageError).code).toBe(code);
  return error as StorageError;
}

/** Follows `next_cursor` to the end, checking every page but the last is full. */
async function allPages<T>(fetch: (cursor: string | null) => Promise<Page<T>>, limit: number): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const page: Page<T> = await fetch(cursor);
    items.push(...page.items);
    if (page.next_cursor === null) {
      expect(page.items.length).toBeLessThanOrEqual(limit);
      return items;
    }
    expect(page.items.length).toBe(limit);
    cursor = page.next_cursor;
  }
  throw new Error('pagination did not end');
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function decode(cursor: string): unknown[] {
  return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
}

// ---------------------------------------------------------------- fixtures

const POLICIES = [
  { policy_id: 'p-shell', policy_type: 'unauthorized_api', severity: 'high', action: 'block', decision: 'deny' },
  { policy_id: 'p-rate', policy_type: 'rate_spike', severity: 'medium', action: 'throttle', decision: 'throttle' },
  { policy_id: 'p-exfil', policy_type: 'data_exfiltration', severity: 'critical', action: 'alert', decision: 'allow' },
] as const;

function verdict(i: number, overrides: Partial<Verdict> = {}): Verdict {
  const policy = POLICIES[i % 3] ?? POLICIES[0];
  return {
    verdict_id: `v-${String(i).padStart(2, '0')}`,
    event_id: `e-${i}`,
    // Groups of three share a time, so pages end inside ties.
    time: T0 - Math.floor(i / 3) * HOUR,
    tenant: 'acme',
    agent_id: i % 2 === 0 ? 'agent-1' : 'agent-2',
    agent_name: 'Coder',
    event_type: 'tool_call',
    ...policy,
    would_decide: policy.decision,
    mode: 'strict',
    reason: `verdict ${i}`,
    evidence: { n: i, tool: 'shell', strict: true },
    atlas: ['AML.T0051'],
    late: false,
    exception: '',
    ...overrides,
  };
}

/** acme's verdicts (one in the previous month, another partition) and a few of globex's. */
const ACME_VERDICTS: Verdict[] = [
  ...Array.from({ length: 23 }, (_, i) => verdict(i)),
  verdict(23, { time: Date.UTC(2026, 9, 15, 8, 0, 0, 0) }),
];
const GLOBEX_VERDICTS: Verdict[] = [0, 1, 2].map((i) => verdict(i, { verdict_id: `g-${i}`, tenant: 'globex' }));
/** An agent whose id is an injection attempt, stored as a literal value. */
const INJECTION_VERDICT = verdict(0, { verdict_id: 'v-injection', tenant: 'inj', agent_id: INJECTION });

const newestFirst = (a: Verdict, b: Verdict): number => b.time - a.time || (a.verdict_id < b.verdict_id ? 1 : -1);

function audit(i: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  const policy = POLICIES[i % 3] ?? POLICIES[0];
  return {
    event_id: `e-${i}`,
    time: T0 - Math.floor(i / 4) * HOUR,
    tenant: 'acme',
    bus_partition: i % 2,
    agent_id: i % 2 === 0 ? 'agent-1' : 'agent-2',
    event_type: 'tool_call',
    decision: policy.decision,
    would_decide: policy.decision,
    mode: 'strict',
    matched_policies: i % 5 === 0 ? [] : [policy.policy_id, 'p-common'],
    verdict_ids: [`v-${i}`],
    policy_version: 'pv-1',
    evaluated_at: T0 + i,
    seq: 100 + i,
    prev_hash: `h-${i - 1}`,
    hash: `h-${i}`,
    ...overrides,
  };
}

const ACME_AUDIT: AuditRecord[] = [
  ...Array.from({ length: 14 }, (_, i) => audit(i)),
  // The same event delivered twice (another offset): two rows, one event id.
  audit(14, { event_id: 'e-0', time: T0, seq: 500 }),
];
const GLOBEX_AUDIT: AuditRecord[] = [0, 1].map((i) => audit(i, { tenant: 'globex', hash: `g-${i}` }));

const auditNewestFirst = (a: AuditRecord, b: AuditRecord): number =>
  b.time - a.time || (a.tenant === b.tenant ? b.bus_partition - a.bus_partition || b.seq - a.seq : a.tenant < b.tenant ? 1 : -1);

function agentEvent(id: string, overrides: Partial<AgentEventInput>) {
  return makeEvent({ event_id: id, tenant: 'acme', agent: { id: 'agent-1', name: 'coder' }, type: 'api_call', ...overrides });
}

/**
 * acme/agent-1: 5 events (3 in the last 24h), renamed, two capability sets, two keys.
 * acme/agent-2: 2 old events, nothing else. globex/agent-1: the same id in another tenant.
 */
function agentEvents() {
  return [
    agentEvent('a1-1', { time: T0 - 72 * HOUR, agent: { id: 'agent-1', name: 'legacy-bot' } }),
    agentEvent('a1-2', { time: T0 - 30 * HOUR, type: 'capability_change', capabilities: ['file_read', 'web_search'] }),
    agentEvent('a1-3', { time: T0 - 20 * HOUR, type: 'key_rotation', key: { fingerprint: 'SHA256:old', algorithm: 'rsa' } }),
    agentEvent('a1-4', { time: T0 - 2 * HOUR, type: 'capability_change', capabilities: ['shell_execute', 'file_read'], agent: { id: 'agent-1', name: 'Coder-Pro' } }),
    // Newest event without a name: the name shown stays the newest one reported.
    agentEvent('a1-5', { time: T0, type: 'key_rotation', key: { fingerprint: 'SHA256:new' }, agent: { id: 'agent-1' } }),
    agentEvent('a2-1', { time: T0 - 50 * HOUR, agent: { id: 'agent-2', name: 'Reviewer' } }),
    agentEvent('a2-2', { time: T0 - 40 * HOUR, agent: { id: 'agent-2', name: 'Reviewer' } }),
    agentEvent('g1-1', { tenant: 'globex', time: T0 - HOUR, agent: { id: 'agent-1', name: 'globex-bot' }, type: 'capability_change', capabilities: ['admin'] }),
    agentEvent('i-1', { tenant: 'inj', time: T0 - 3 * HOUR, agent: { id: INJECTION, name: '100% safe_agent' } }),
  ];
}

function alert(id: string, overrides: Partial<Alert> = {}): Alert {
  return {
    alert_id: id,
    tenant: 'acme',
    policy_id: 'p-shell',
    policy_type: 'unauthorized_api',
    agent_id: 'agent-1',
    severity: 'high',
    status: 'open',
    count: 1,
    first_seen: T0 - HOUR,
    last_seen: T0,
    title: 'Unauthorized tool',
    reason: 'tool "shell" is not allowed',
    verdict_ids: ['v-00'],
    evidence: { tool: 'shell' },
    atlas: [],
    updated_at: T0,
    acknowledged_by: '',
    resolved_at: 0,
    source_partition: 0,
    source_offset: 1,
    silenced_by: '',
    comment: '',
    ...overrides,
  };
}

beforeAll(async () => {
  const verdicts = [...ACME_VERDICTS, ...GLOBEX_VERDICTS, INJECTION_VERDICT];
  await t.store.insertVerdicts(verdicts);
  await t.store.insertAudit([...ACME_AUDIT, ...GLOBEX_AUDIT]);
  await t.store.insertEvents(agentEvents());
  await t.store.upsertAlerts([
    alert('a-open-1'),
    alert('a-open-2', { policy_id: 'p-rate' }),
    alert('a-ack', { policy_id: 'p-exfil', status: 'acknowledged', acknowledged_by: 'ana' }),
    alert('a-done', { policy_id: 'p-other' }),
    alert('g-open', { tenant: 'globex' }),
  ]);
  // Replays of everything, and a later version of one alert that resolves it.
  await t.store.insertVerdicts(verdicts);
  await t.store.insertAudit([...ACME_AUDIT, ...GLOBEX_AUDIT]);
  await t.store.insertEvents(agentEvents());
  await t.store.upsertAlerts([alert('a-open-1'), alert('a-done', { policy_id: 'p-other', status: 'resolved', updated_at: T0 + 1, resolved_at: T0 + 1 })]);
});

// ---------------------------------------------------------------- verdicts

describe('searchVerdicts', () => {
  const search = (q: Omit<VerdictSearch, 'limit'> & { limit?: number }) => searchVerdicts(t.client, t.database, { limit: 100, ...q });
  const expected = (keep: (v: Verdict) => boolean) => ACME_VERDICTS.filter(keep).sort(newestFirst);

  it('lists a tenant’s verdicts newest first, each once although every row was stored twice', async () => {
    expect(await rawCount('verdicts', 'acme')).toBe(2 * ACME_VERDICTS.length);
    const page = await search({ tenant: 'acme' });
    expect(page).toEqual({ items: expected(() => true), next_cursor: null });
  });

  it('applies each filter, alone and together', async () => {
    const cases: [Omit<VerdictSearch, 'limit' | 'tenant'>, (v: Verdict) => boolean][] = [
      [{ agent_id: 'agent-2' }, (v) => v.agent_id === 'agent-2'],
      [{ policy_id: 'p-rate' }, (v) => v.policy_id === 'p-rate'],
      [{ policy_type: 'data_exfiltration' }, (v) => v.policy_type === 'data_exfiltration'],
      [{ decision: 'deny' }, (v) => v.decision === 'deny'],
      [{ severity: 'medium' }, (v) => v.severity === 'medium'],
      // from inclusive, to exclusive: both bounds sit on a group of equal times.
      [{ from: T0 - 5 * HOUR, to: T0 - HOUR }, (v) => v.time >= T0 - 5 * HOUR && v.time < T0 - HOUR],
      [{ agent_id: 'agent-1', decision: 'deny', from: T0 - 6 * HOUR }, (v) => v.agent_id === 'agent-1' && v.decision === 'deny' && v.time >= T0 - 6 * HOUR],
    ];
    for (const [filter, keep] of cases) {
      const want = expected(keep);
      expect(want.length).toBeGreaterThan(0);
      expect((await search({ tenant: 'acme', ...filter })).items, JSON.stringify(filter)).toEqual(want);
    }
  });

  it('without a tenant, searches every tenant', async () => {
    const page = await search({ policy_id: 'p-shell', from: T0 });
    expect(page.items.map((v) => `${v.tenant}/${v.verdict_id}`).sort()).toEqual(['acme/v-00', 'globex/g-0', 'inj/v-injection']);
  });

  it('isolates tenants: one tenant’s search never returns another’s verdicts, cursor or not', async () => {
    const globex = await search({ tenant: 'globex' });
    expect(globex.items.map((v) => v.verdict_id).sort()).toEqual(['g-0', 'g-1', 'g-2']);
    // A cursor is a position, not an access grant: it cannot widen the tenant filter.
    const page = await search({ tenant: 'globex', limit: 1 });
    expect(page.next_cursor).not.toBeNull();
    const rest = await search({ tenant: 'globex', cursor: encode([1, 'verdicts', T0 + HOUR, 'zzz']) });
    expect(rest.items.map((v) => `${v.tenant}/${v.verdict_id}`).sort()).toEqual(['globex/g-0', 'globex/g-1', 'globex/g-2']);
    expect((await search({ tenant: 'nobody' })).items).toEqual([]);
  });

  it('pages through ties on time with no gaps and no duplicates', async () => {
    for (const limit of [1, 2, 4, 5, 24]) {
      const items = await allPages((cursor) => search({ tenant: 'acme', limit, cursor }), limit);
      expect(items.map((v) => v.verdict_id)).toEqual(expected(() => true).map((v) => v.verdict_id));
    }
    const denied = await allPages((cursor) => search({ tenant: 'acme', decision: 'deny', limit: 3, cursor }), 3);
    expect(denied).toEqual(expected((v) => v.decision === 'deny'));
  });

  it('does not shift pages when newer verdicts arrive between requests', async () => {
    const rows = [0, 1, 2, 3].map((i) => verdict(i, { tenant: 'late', verdict_id: `l-${i}` }));
    await t.store.insertVerdicts(rows);
    const page1 = await search({ tenant: 'late', limit: 2 });
    await t.store.insertVerdicts([verdict(0, { tenant: 'late', verdict_id: 'l-new', time: T0 + HOUR })]);
    const page2 = await search({ tenant: 'late', limit: 2, cursor: page1.next_cursor });
    expect([...page1.items, ...page2.items].map((v) => v.verdict_id)).toEqual(['l-2', 'l-1', 'l-0', 'l-3']);
  });

  it('treats injection attempts as literal values', async () => {
    expect((await search({ agent_id: "x' OR 1=1 --" })).items.map((v) => v.verdict_id)).toEqual(['v-injection']);
    for (const attempt of ["agent-1' OR '1'='1", "' OR 1=1 --", 'agent-1\\', 'agent-%', '*']) {
      expect((await search({ agent_id: attempt })).items, attempt).toEqual([]);
    }
    expect((await search({ tenant: "acme' OR tenant != '" })).items).toEqual([]);
    expect((await search({ tenant: 'acme', policy_id: "p-shell') OR ('1'='1" })).items).toEqual([]);
  });

  it('lowers a limit above the maximum to it and refuses a limit below 1', async () => {
    await t.store.insertVerdicts(Array.from({ length: MAX_SEARCH_LIMIT + 5 }, (_, i) => verdict(i, { tenant: 'bulk', verdict_id: `b-${i}` })));
    const page = await search({ tenant: 'bulk', limit: 5000 });
    expect(page.items).toHaveLength(MAX_SEARCH_LIMIT);
    expect(page.next_cursor).not.toBeNull();
    expect((await search({ tenant: 'bulk', limit: 5000, cursor: page.next_cursor })).items).toHaveLength(5);
    for (const limit of [0, -1, 1.5, Number.NaN]) await expectStorageError(search({ limit }), 'AW_STORAGE_INVALID_FILTER');
  });

  it('refuses bad time bounds', async () => {
    for (const bounds of [{ from: -1 }, { to: 1.5 }, { from: 253_402_300_800_000 }, { from: T0, to: T0 - 1 }]) {
      await expectStorageError(search(bounds), 'AW_STORAGE_INVALID_FILTER');
    }
    expect((await search({ tenant: 'acme', from: T0, to: T0 })).items).toEqual([]);
  });

  it('refuses a cursor it did not produce', async () => {
    const good = (await search({ tenant: 'acme', limit: 2 })).next_cursor ?? '';
    const auditCursor = (await searchAudit(t.client, t.database, { tenant: 'acme', limit: 2 })).next_cursor ?? '';
    const [version, kind, time, id] = decode(good);
    expect([version, kind]).toEqual([1, 'verdicts']);
    const bad = [
      '',
      'not a cursor!',
      'x'.repeat(5000),
      good.slice(0, -3),
      `${good}%`,
      auditCursor,
      encode([2, kind, time, id]),
      encode([version, 'agents', time, id]),
      encode([version, kind, String(time), id]),
      encode([version, kind, -1, id]),
      encode([version, kind, time, 7]),
      encode([version, kind, time]),
      encode([version, kind, time, id, 'extra']),
      encode({ time, id }),
      encode([version, kind, `${String(time)}) OR 1=1 --`, id]),
    ];
    for (const cursor of bad) {
      const error = await expectStorageError(search({ tenant: 'acme', cursor }), 'AW_STORAGE_INVALID_CURSOR');
      expect(error.message).toBe('cursor is not one returned by the verdicts search');
    }
  });

  it('a well-formed but edited cursor is only a position: its id is bound as a value', async () => {
    const items = (await search({ tenant: 'acme', cursor: encode([1, 'verdicts', T0, "v-01' OR 1=1 --"]) })).items;
    // Rows at T0 with a smaller id than the text, then every older row.
    expect(items).toEqual(expected((v) => v.time < T0 || (v.time === T0 && v.verdict_id < "v-01' OR 1=1 --")));
  });

  it('refuses a database name that is not an identifier', async () => {
    await expectStorageError(searchVerdicts(t.client, 'db; DROP TABLE x', { limit: 1 }), 'AW_STORAGE_INVALID_CONFIG');
  });
});

describe('verdictsByIds', () => {
  it('returns the stored verdicts among the ids, newest first, once each', async () => {
    const found = await verdictsByIds(t.client, t.database, ['v-05', 'v-00', 'missing', 'v-05', 'g-1']);
    expect(found.map((v) => `${v.tenant}/${v.verdict_id}`)).toEqual(['acme/v-00', 'globex/g-1', 'acme/v-05']);
    expect(found[0]).toEqual(ACME_VERDICTS[0]);
  });

  it('keeps to the tenant when one is given', async () => {
    expect((await verdictsByIds(t.client, t.database, ['v-00', 'g-1'], 'globex')).map((v) => v.verdict_id)).toEqual(['g-1']);
    expect(await verdictsByIds(t.client, t.database, ['v-00'], "globex' OR 1=1 --")).toEqual([]);
  });

  it('narrows by event time when given bounds', async () => {
    const ids = ['v-00', 'v-03', 'v-23'];
    const within = await verdictsByIds(t.client, t.database, ids, 'acme', { from: T0 - HOUR, to: T0 + 1 });
    expect(within.map((v) => v.verdict_id)).toEqual(['v-00', 'v-03']);
  });

  it('answers [] for no ids and refuses too many', async () => {
    expect(await verdictsByIds(t.client, t.database, [])).toEqual([]);
    const many = Array.from({ length: 1001 }, (_, i) => `id-${i}`);
    await expectStorageError(verdictsByIds(t.client, t.database, many), 'AW_STORAGE_INVALID_FILTER');
  });
});

// ---------------------------------------------------------------- audit

describe('searchAudit', () => {
  const search = (q: Omit<AuditSearch, 'limit'> & { limit?: number }) => searchAudit(t.client, t.database, { limit: 100, ...q });
  const expected = (keep: (a: AuditRecord) => boolean) => ACME_AUDIT.filter(keep).sort(auditNewestFirst);

  it('lists a tenant’s rows newest first, each once although every row was stored twice', async () => {
    expect(await rawCount('audit_log', 'acme')).toBe(2 * ACME_AUDIT.length);
    expect(await search({ tenant: 'acme' })).toEqual({ items: expected(() => true), next_cursor: null });
  });

  it('keeps both rows of an event delivered twice', async () => {
    const rows = (await search({ tenant: 'acme' })).items.filter((a) => a.event_id === 'e-0');
    expect(rows.map((a) => a.seq)).toEqual([500, 100]);
  });

  it('applies each filter; policy_id matches any of the row’s matched policies', async () => {
    const cases: [Omit<AuditSearch, 'limit' | 'tenant'>, (a: AuditRecord) => boolean][] = [
      [{ agent_id: 'agent-2' }, (a) => a.agent_id === 'agent-2'],
      [{ decision: 'throttle' }, (a) => a.decision === 'throttle'],
      [{ policy_id: 'p-exfil' }, (a) => a.matched_policies.includes('p-exfil')],
      [{ policy_id: 'p-common' }, (a) => a.matched_policies.includes('p-common')],
      [{ from: T0 - 2 * HOUR, to: T0 }, (a) => a.time >= T0 - 2 * HOUR && a.time < T0],
      [{ agent_id: 'agent-1', policy_id: 'p-common', from: T0 - 2 * HOUR }, (a) => a.agent_id === 'agent-1' && a.matched_policies.includes('p-common') && a.time >= T0 - 2 * HOUR],
    ];
    for (const [filter, keep] of cases) {
      const want = expected(keep);
      expect(want.length).toBeGreaterThan(0);
      expect((await search({ tenant: 'acme', ...filter })).items, JSON.stringify(filter)).toEqual(want);
    }
    // A policy id is matched whole, not as a substring or pattern.
    expect((await search({ tenant: 'acme', policy_id: 'p-' })).items).toEqual([]);
    expect((await search({ tenant: 'acme', policy_id: 'p-%' })).items).toEqual([]);
  });

  it('isolates tenants and treats injection attempts as literals', async () => {
    expect((await search({ tenant: 'globex' })).items.map((a) => a.hash).sort()).toEqual(['g-0', 'g-1']);
    expect((await search({ tenant: "acme' OR 1=1 --" })).items).toEqual([]);
    expect((await search({ agent_id: INJECTION })).items).toEqual([]);
    expect((await search({ tenant: 'acme', policy_id: "p-shell') OR has(matched_policies, 'p-rate" })).items).toEqual([]);
  });

  it('pages through equal times and both partitions with no gaps and no duplicates', async () => {
    for (const limit of [1, 3, 4, 15]) {
      const items = await allPages((cursor) => search({ tenant: 'acme', limit, cursor }), limit);
      expect(items).toEqual(expected(() => true));
    }
    // Across tenants too: the tenant is part of the sort key.
    const everyone = await allPages((cursor) => search({ from: T0 - HOUR, limit: 2, cursor }), 2);
    expect(everyone).toEqual([...ACME_AUDIT, ...GLOBEX_AUDIT].filter((a) => a.time >= T0 - HOUR).sort(auditNewestFirst));
  });

  it('refuses a bad cursor, limit or time bound', async () => {
    const verdictCursor = (await searchVerdicts(t.client, t.database, { tenant: 'acme', limit: 1 })).next_cursor ?? '';
    for (const cursor of ['', '!!', verdictCursor, encode([1, 'audit', T0, 'acme', 0.5, 1]), encode([1, 'audit', T0, 'acme', 0, -1])]) {
      await expectStorageError(search({ cursor }), 'AW_STORAGE_INVALID_CURSOR');
    }
    await expectStorageError(search({ limit: 0 }), 'AW_STORAGE_INVALID_FILTER');
    await expectStorageError(search({ from: 2, to: 1 }), 'AW_STORAGE_INVALID_FILTER');
  });
});

// ---------------------------------------------------------------- agents

describe('listAgents', () => {
  const list = (q: { tenant?: string; agent_id?: string; q?: string; limit?: number; cursor?: string | null; now?: number }) =>
    listAgents(t.client, t.database, { limit: 100, now: NOW, ...q });

  const agent1: AgentSummary = {
    tenant: 'acme',
    agent_id: 'agent-1',
    agent_name: 'Coder-Pro',
    first_seen: T0 - 72 * HOUR,
    last_seen: T0,
    events: 5,
    events_24h: 3,
    open_alerts: 2,
    acknowledged_alerts: 1,
    capabilities: ['file_read', 'shell_execute'],
    capabilities_at: T0 - 2 * HOUR,
    key_fingerprint: 'SHA256:new',
    key_algorithm: null,
    key_at: T0,
  };
  const agent2: AgentSummary = {
    tenant: 'acme',
    agent_id: 'agent-2',
    agent_name: 'Reviewer',
    first_seen: T0 - 50 * HOUR,
    last_seen: T0 - 40 * HOUR,
    events: 2,
    events_24h: 0,
    open_alerts: 0,
    acknowledged_alerts: 0,
    capabilities: null,
    capabilities_at: null,
    key_fingerprint: null,
    key_algorithm: null,
    key_at: null,
  };
  const globex1: AgentSummary = {
    ...agent2,
    tenant: 'globex',
    agent_id: 'agent-1',
    agent_name: 'globex-bot',
    first_seen: T0 - HOUR,
    last_seen: T0 - HOUR,
    events: 1,
    events_24h: 1,
    open_alerts: 1,
    capabilities: ['admin'],
    capabilities_at: T0 - HOUR,
  };

  it('summarises a tenant’s agents, most recently active first; replayed events and snapshots count once', async () => {
    expect(await rawCount('events', 'acme')).toBe(14);
    expect(await rawCount('capability_history', 'acme')).toBe(8);
    expect(await list({ tenant: 'acme' })).toEqual({ items: [agent1, agent2], next_cursor: null });
  });

  it('counts events_24h from `now - 24h` on, events dated after `now` included', async () => {
    const later = await list({ tenant: 'acme', now: T0 + 23 * HOUR });
    expect(later.items.map((a) => [a.agent_id, a.events_24h])).toEqual([['agent-1', 1], ['agent-2', 0]]);
    const earlier = await list({ tenant: 'acme', now: T0 - 29 * HOUR });
    expect(earlier.items.map((a) => [a.agent_id, a.events_24h])).toEqual([['agent-1', 4], ['agent-2', 2]]);
  });

  it('reports the latest key with its algorithm when it was reported', async () => {
    await t.store.insertEvents([
      agentEvent('k-1', { tenant: 'keys', agent: { id: 'k' }, type: 'key_rotation', time: T0 - HOUR, key: { fingerprint: 'SHA256:a', algorithm: 'rsa' } }),
      agentEvent('k-2', { tenant: 'keys', agent: { id: 'k' }, type: 'key_rotation', time: T0, key: { fingerprint: 'SHA256:b', algorithm: 'ed25519' } }),
    ]);
    const k = await getAgent(t.client, t.database, 'keys', 'k', NOW);
    expect(k).toMatchObject({ agent_name: '', key_fingerprint: 'SHA256:b', key_algorithm: 'ed25519', key_at: T0, capabilities: null });
  });

  it('keeps agents with the same id in different tenants apart', async () => {
    expect((await list({ tenant: 'globex' })).items).toEqual([globex1]);
    const everyone = await list({ agent_id: 'agent-1' });
    expect(everyone.items).toEqual([agent1, globex1]);
  });

  it('getAgent answers one agent of one tenant, or null', async () => {
    expect(await getAgent(t.client, t.database, 'acme', 'agent-2', NOW)).toEqual(agent2);
    expect(await getAgent(t.client, t.database, 'globex', 'agent-2', NOW)).toBeNull();
    expect(await getAgent(t.client, t.database, "acme' OR 1=1 --", 'agent-1', NOW)).toBeNull();
  });

  it('q matches a literal, case-insensitive substring of the id or the latest name', async () => {
    const ids = async (q: string, tenant?: string) => (await list({ q, ...(tenant === undefined ? {} : { tenant }) })).items.map((a) => `${a.tenant}/${a.agent_id}`);
    expect(await ids('AGENT-2')).toEqual(['acme/agent-2']);
    expect(await ids('coder-p', 'acme')).toEqual(['acme/agent-1']);
    expect(await ids('GLOBEX-')).toEqual(['globex/agent-1']);
    // A name the agent no longer reports does not match.
    expect(await ids('legacy')).toEqual([]);
    expect(await ids('reviewer', 'globex')).toEqual([]);
    // Pattern characters and quotes are plain text.
    expect(await ids('100%')).toEqual([`inj/${INJECTION}`]);
    expect(await ids('%')).toEqual([`inj/${INJECTION}`]);
    expect(await ids('_agent')).toEqual([`inj/${INJECTION}`]);
    expect(await ids('a%t')).toEqual([]);
    expect(await ids("' OR 1=1")).toEqual([`inj/${INJECTION}`]);
    expect(await ids("') OR 1=1 --")).toEqual([]);
  });

  it('treats an injection attempt as the agent id it spells', async () => {
    expect((await list({ agent_id: INJECTION })).items.map((a) => a.tenant)).toEqual(['inj']);
    expect((await list({ agent_id: "agent-1' OR 1=1 --" })).items).toEqual([]);
    expect((await list({ tenant: "acme' OR '1'='1" })).items).toEqual([]);
  });

  it('pages with no gaps and no duplicates, and refuses bad cursors', async () => {
    const all = (await list({})).items;
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const limit of [1, 2, 3]) {
      expect(await allPages((cursor) => list({ limit, cursor }), limit)).toEqual(all);
    }
    const good = (await list({ limit: 1 })).next_cursor ?? '';
    expect(decode(good).slice(0, 2)).toEqual([1, 'agents']);
    for (const cursor of ['', '%%%', encode([1, 'agents', T0, 'acme']), encode([1, 'verdicts', T0, 'acme', 'agent-1']), encode([1, 'agents', 'T0', 'acme', 'a'])]) {
      await expectStorageError(list({ cursor }), 'AW_STORAGE_INVALID_CURSOR');
    }
  });

  it('refuses a bad limit or now', async () => {
    await expectStorageError(list({ limit: 0 }), 'AW_STORAGE_INVALID_FILTER');
    await expectStorageError(list({ now: -5 }), 'AW_STORAGE_INVALID_FILTER');
    await expectStorageError(list({ now: 1.5 }), 'AW_STORAGE_INVALID_FILTER');
  });
});
