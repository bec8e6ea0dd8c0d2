import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../core/event.js';
import type { Alert, AuditRecord, DeadLetter, Verdict } from '../../core/records.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { StorageError } from '../errors.js';
import { decodeAlertCursor, encodeAlertCursor, eventToRow } from './analytics-store.js';
import { toStorageError } from './client.js';
import { applyMigrations, defaultMigrationsDir, loadMigrations, splitStatements } from './migrations.js';

let t: TestStore;

beforeAll(async () => {
  t = await openTestStore();
});

afterAll(async () => {
  await t?.close();
});

/** Runs a read on the test database and returns its rows; `{db}` is replaced by the database name. */
async function rows<R>(query: string, params: Record<string, unknown> = {}, client = t.client, db = t.database): Promise<R[]> {
  const result = await client.query({ query: query.replaceAll('{db}', db), query_params: params, format: 'JSONEachRow' });
  return result.json<R>();
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

function verdict(overrides: Partial<Verdict> = {}): Verdict {
  return {
    verdict_id: 'v-1',
    event_id: 'e-1',
    time: 1_700_000_000_123,
    tenant: 'acme',
    agent_id: 'agent-1',
    agent_name: 'Coder',
    event_type: 'tool_call',
    policy_id: 'p-shell',
    policy_type: 'unauthorized_api',
    severity: 'high',
    action: 'block',
    decision: 'deny',
    would_decide: 'deny',
    mode: 'strict',
    reason: 'tool "shell" is not allowed',
    evidence: { tool: 'shell', count: 3, ratio: 0.25, allowed: false },
    atlas: ['AML.T0051', 'AML.T0053'],
    late: false,
    exception: '',
    ...overrides,
  };
}

function alert(overrides: Partial<Alert> = {}): Alert {
  return {
    alert_id: 'a-1',
    tenant: 'acme',
    policy_id: 'p-shell',
    policy_type: 'unauthorized_api',
    agent_id: 'agent-1',
    severity: 'high',
    status: 'open',
    count: 1,
    first_seen: 1_700_000_000_000,
    last_seen: 1_700_000_000_000,
    title: 'Unauthorized tool',
    reason: 'tool "shell" is not allowed',
    verdict_ids: ['v-1'],
    evidence: { tool: 'shell', n: 1, strict: true },
    atlas: ['AML.T0051'],
    updated_at: 1_700_000_000_000,
    acknowledged_by: '',
    resolved_at: 0,
    source_partition: 2,
    source_offset: 9_007_199_254,
    silenced_by: '',
    comment: '',
    ...overrides,
  };
}

describe('migrations', () => {
  it('splits statements at lines ending in ";" and ignores comment-only chunks', () => {
    const sql = [
      '-- header; with a semicolon in a comment;',
      'CREATE TABLE a (x UInt8) -- trailing comment',
      'ENGINE = Memory;',
      '',
      'CREATE TABLE b (s String DEFAULT \'a;b\')',
      'ENGINE = Memory ;  ',
      '-- only a comment at the end',
    ].join('\n');
    expect(splitStatements(sql)).toEqual([
      '-- header; with a semicolon in a comment;\nCREATE TABLE a (x UInt8) -- trailing comment\nENGINE = Memory',
      "CREATE TABLE b (s String DEFAULT 'a;b')\nENGINE = Memory",
    ]);
  });

  it('finds the repository migrations, starting with 0001_init', async () => {
    const migrations = await loadMigrations(defaultMigrationsDir());
    expect(migrations[0]).toMatchObject({ version: 1, name: 'init' });
    expect(migrations[0]?.statements.length).toBe(5);
  });

  it('creates the database and tables once; a second run is a no-op', async () => {
    const fresh = await openTestStore({ migrate: false });
    try {
      const first = await fresh.store.applyMigrations();
      const second = await fresh.store.applyMigrations();
      await fresh.store.migrate();
      // Every version in the folder, whatever later migrations add.
      const versions = (await loadMigrations(defaultMigrationsDir())).map((m) => m.version);
      expect(versions.slice(0, 3)).toEqual([1, 2, 3]);
      expect(versions).toContain(5);
      expect(first.applied).toEqual(versions);
      expect(second).toEqual({ applied: [], current: Math.max(...versions) });
      const tables = await rows<{ name: string }>(
        'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name',
        { db: fresh.database },
        fresh.client,
      );
      expect(tables.map((r) => r.name)).toEqual(
        expect.arrayContaining(['alerts', 'audit_log', 'capability_history', 'capability_history_mv', 'dead_letters', 'events', 'schema_migrations', 'silences', 'verdicts']),
      );
      // No FINAL: the ledger must not even hold a duplicate row.
      const ledger = await rows<{ version: number; name: string }>(
        'SELECT version, name FROM {db}.schema_migrations ORDER BY version',
        {},
        fresh.client,
        fresh.database,
      );
      expect(ledger.slice(0, 3)).toEqual([
        { version: 1, name: 'init' },
        { version: 2, name: 'capability_history' },
        { version: 3, name: 'verdict_exception' },
      ]);
      expect(ledger).toContainEqual({ version: 5, name: 'silences' });
      expect(ledger).toHaveLength(versions.length);
    } finally {
      await fresh.close();
    }
  });

  it('0003 adds verdicts.exception; verdicts stored before it read back with exception ""', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'aw-migrations-'));
    const fresh = await openTestStore({ migrate: false });
    try {
      for (const name of ['0001_init.sql', '0002_capability_history.sql']) await copyFile(path.join(defaultMigrationsDir(), name), path.join(dir, name));
      expect((await applyMigrations(fresh.client, fresh.database, { dir })).applied).toEqual([1, 2]);
      const old = verdict({ verdict_id: 'old-v', tenant: 'upgrade' });
      const { exception: _none, ...oldRow } = { ...old, evidence: JSON.stringify(old.evidence) };
      await fresh.client.insert({ table: `${fresh.database}.verdicts`, values: [oldRow], format: 'JSONEachRow' });
      expect((await fresh.store.applyMigrations()).applied[0]).toBe(3);
      expect(await fresh.store.listVerdicts({ tenant: 'upgrade', limit: 10 })).toEqual([old]);
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('0005 adds alerts.silenced_by and comment; alerts stored before it read back with ""', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'aw-migrations-'));
    const fresh = await openTestStore({ migrate: false });
    try {
      const before = (await loadMigrations(defaultMigrationsDir())).filter((m) => m.version < 5);
      for (const m of before) {
        const name = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
        await copyFile(path.join(defaultMigrationsDir(), name), path.join(dir, name));
      }
      await applyMigrations(fresh.client, fresh.database, { dir });
      const old = alert({ alert_id: 'old-a', tenant: 'upgrade' });
      const { silenced_by: _s, comment: _c, ...oldRow } = { ...old, evidence: JSON.stringify(old.evidence) };
      await fresh.client.insert({ table: `${fresh.database}.alerts`, values: [oldRow], format: 'JSONEachRow' });
      expect((await fresh.store.applyMigrations()).applied).toContain(5);
      expect(await fresh.store.getAlert('old-a')).toEqual(old);
      expect((await fresh.store.listAlerts({ tenant: 'upgrade', silenced: false, limit: 10 })).items).toEqual([old]);
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('0007 adds events.content_input and content_output; events stored before it read back with ""', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'aw-migrations-'));
    const fresh = await openTestStore({ migrate: false });
    try {
      for (const m of (await loadMigrations(defaultMigrationsDir())).filter((m) => m.version < 7)) {
        const name = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
        await copyFile(path.join(defaultMigrationsDir(), name), path.join(dir, name));
      }
      await applyMigrations(fresh.client, fresh.database, { dir });
      await fresh.client.insert({
        table: `${fresh.database}.events`,
        values: [{ event_id: 'old-e', time: 1_700_000_000_000, tenant: 'upgrade', agent_id: 'a', type: 'auth' }],
        format: 'JSONEachRow',
      });
      expect((await fresh.store.applyMigrations()).applied).toContain(7);
      expect(
        await rows('SELECT event_id, content_input, content_output FROM {db}.events', {}, fresh.client, fresh.database),
      ).toEqual([{ event_id: 'old-e', content_input: '', content_output: '' }]);
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('does not record a failed migration, resumes after the fix, and refuses an edited applied file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'aw-migrations-'));
    const fresh = await openTestStore({ migrate: false });
    try {
      await writeFile(path.join(dir, '0001_first.sql'), 'CREATE TABLE IF NOT EXISTS {db}.one (x UInt8) ENGINE = MergeTree ORDER BY x;\n');
      await writeFile(
        path.join(dir, '0002_second.sql'),
        'CREATE TABLE IF NOT EXISTS {db}.two (x UInt8) ENGINE = MergeTree ORDER BY x;\nALTER TABLE {db}.nope ADD COLUMN y UInt8;\n',
      );
      const failed = await expectStorageError(applyMigrations(fresh.client, fresh.database, { dir }), 'AW_STORAGE_MIGRATION_FAILED');
      expect(failed.message).toContain('0002_second, statement 2');
      const recorded = await rows<{ version: number }>('SELECT version FROM {db}.schema_migrations FINAL', {}, fresh.client, fresh.database);
      expect(recorded.map((r) => Number(r.version))).toEqual([1]);

      await writeFile(path.join(dir, '0002_second.sql'), 'CREATE TABLE IF NOT EXISTS {db}.two (x UInt8) ENGINE = MergeTree ORDER BY x;\n');
      expect(await applyMigrations(fresh.client, fresh.database, { dir })).toEqual({ applied: [2], current: 2 });

      await writeFile(path.join(dir, '0001_first.sql'), 'CREATE TABLE IF NOT EXISTS {db}.uno (x UInt8) ENGINE = MergeTree ORDER BY x;\n');
      await expectStorageError(applyMigrations(fresh.client, fresh.database, { dir }), 'AW_STORAGE_MIGRATION_CHANGED');
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a database name that is not a plain identifier before touching SQL', async () => {
    await expectStorageError(applyMigrations(t.client, 'x; DROP DATABASE default'), 'AW_STORAGE_INVALID_CONFIG');
  });
});

describe('round trips', () => {
  it('stores every event field except content (by default), with exact millisecond times', async () => {
    const full: AgentEvent = {
      event_id: 'evt-full',
      time: 1_700_000_000_123,
      tenant: 'rt-events',
      agent: { id: 'agent-1', name: 'Coder', type: 'coding_assistant', version: '1.2.3' },
      type: 'network_egress',
      action: 'http.request',
      resource: 's3://bucket/key',
      source: { ip: '10.0.0.1', host: 'laptop', user: 'ana' },
      tool: { name: 'fetch', server: 'mcp-web', version: '0.1' },
      mcp: { server_id: 'mcp-web', url: 'https://mcp.example', trust_score: 42.5, tools: ['fetch'], capabilities: ['net'] },
      capabilities: ['net', 'fs'],
      key: { fingerprint: 'SHA256:abc', algorithm: 'ed25519' },
      network: { domain: 'example.com', url: 'https://example.com/x', method: 'POST', ip: '93.184.216.34', port: 443 },
      outcome: 'denied',
      duration_ms: 12.5,
      content: { input: 'secret prompt', output: 'secret answer' },
      attributes: { region: 'eu', retries: 2, cached: true },
    };
    const minimal: AgentEvent = { event_id: 'evt-min', time: 253_402_300_799_999, tenant: 'rt-events', agent: { id: 'agent-2' }, type: 'auth' };
    await t.store.insertEvents([full, minimal]);

    const stored = await rows<Record<string, unknown>>(
      `SELECT * EXCEPT (time, ingested_at), toUnixTimestamp64Milli(time) AS time_ms
       FROM {db}.events FINAL WHERE tenant = {tenant:String} ORDER BY event_id`,
      { tenant: 'rt-events' },
    );
    // 'evt-full' sorts before 'evt-min'.
    const expected = [full, minimal].map((event): Record<string, unknown> => {
      const { time, ...row } = eventToRow(event);
      return { ...row, time_ms: time };
    });
    expect(stored.map((row) => ({ ...row, time_ms: Number(row.time_ms) }))).toEqual(expected);
    expect(JSON.stringify(stored)).not.toContain('secret');
    expect(stored[0]).toMatchObject({ content_input: '', content_output: '' });
    expect(stored[0]).toMatchObject({ attributes: { region: 'eu', retries: '2', cached: 'true' }, mcp_trust_score: 42.5, network_port: 443 });
  });

  it('reads back verdicts exactly as written', async () => {
    const a = verdict({ verdict_id: 'rt-v1', tenant: 'rt-verdicts', time: 1, late: true, evidence: {} });
    const b = verdict({ verdict_id: 'rt-v2', tenant: 'rt-verdicts', time: 1_700_000_000_999, mode: 'monitoring', decision: 'allow' });
    const c = verdict({
      verdict_id: 'rt-v3',
      tenant: 'rt-verdicts',
      time: 1_700_000_001_000,
      decision: 'allow',
      would_decide: 'allow',
      exception: 'ops-bot-window',
      evidence: { exception: 'ops-bot-window', approved_by: 'ciso@example.com', expires: '', suppressed_decision: 'deny' },
    });
    await t.store.insertVerdicts([a, b, c]);
    expect(await t.store.listVerdicts({ tenant: 'rt-verdicts', limit: 10 })).toEqual([c, b, a]);
  });

  it('reads back alerts exactly as written', async () => {
    const a = alert({
      alert_id: 'rt-a1',
      tenant: 'rt-alerts',
      status: 'resolved',
      count: 9_007_199_254_740_991,
      resolved_at: 1_700_000_100_001,
      acknowledged_by: 'soc@example.com',
      silenced_by: '0b6f9f8e-2a51-4c1e-9d57-3f1f2d7f2c10',
      comment: 'false positive: "load test" \'q\'',
      verdict_ids: [],
      atlas: [],
      evidence: { 'key with "quotes"': 'value\nwith newline', big: 1e21 },
    });
    await t.store.upsertAlerts([a]);
    expect(await t.store.getAlert('rt-a1')).toEqual(a);
    expect(await t.store.getAlert('rt-a1', 'rt-alerts')).toEqual(a);
  });

  it('stores audit rows and returns the newest link per tenant', async () => {
    const link = (tenant: string, seq: number): AuditRecord => ({
      event_id: `${tenant}-e${seq}`,
      time: 1_700_000_000_000 + seq,
      tenant,
      bus_partition: 2,
      agent_id: 'agent-1',
      event_type: 'api_call',
      decision: 'allow',
      would_decide: 'deny',
      mode: 'monitoring',
      matched_policies: ['p-1', 'p-2'],
      verdict_ids: [`${tenant}-v${seq}`],
      policy_version: 'sha256:policy',
      evaluated_at: 1_700_000_000_500 + seq,
      seq,
      prev_hash: `h${seq - 1}`,
      hash: `${tenant}-h${seq}`,
    });
    const chainA = [1, 2, 3].map((seq) => link('rt-audit-a', seq));
    const chainB = [1, 2].map((seq) => link('rt-audit-b', seq));
    // Out of order and split over inserts: the head is the highest seq, not the last written.
    await t.store.insertAudit([chainA[2]!, chainB[0]!]);
    await t.store.insertAudit([chainA[0]!, chainA[1]!, chainB[1]!]);

    const heads = await t.store.auditChainHeads(2, 1_000, ['rt-audit-a', 'rt-audit-b', 'rt-audit-none']);
    expect(heads.get('rt-audit-a')).toEqual({ seq: 3, hash: 'rt-audit-a-h3' });
    expect(heads.get('rt-audit-b')).toEqual({ seq: 2, hash: 'rt-audit-b-h2' });
    expect(heads.has('rt-audit-none')).toBe(false);
    // As of an earlier offset (a replay from there), and on another partition.
    expect((await t.store.auditChainHeads(2, 3, ['rt-audit-a'])).get('rt-audit-a')).toEqual({ seq: 2, hash: 'rt-audit-a-h2' });
    expect((await t.store.auditChainHeads(5, 1_000, ['rt-audit-a'])).size).toBe(0);

    const stored = await rows<Record<string, unknown>>(
      `SELECT * EXCEPT (time, evaluated_at, seq),
         toUnixTimestamp64Milli(time) AS time_ms, toUnixTimestamp64Milli(evaluated_at) AS evaluated_at_ms, seq AS seq_n
       FROM {db}.audit_log FINAL WHERE tenant = {tenant:String} ORDER BY seq`,
      { tenant: 'rt-audit-a' },
    );
    expect(
      stored.map(({ time_ms, evaluated_at_ms, seq_n, ...row }) => ({
        ...row,
        time: Number(time_ms),
        evaluated_at: Number(evaluated_at_ms),
        seq: Number(seq_n),
      })),
    ).toEqual(chainA);
  });

  it('stores dead letters', async () => {
    const letter: DeadLetter = {
      id: 'dl-1',
      received_at: 1_700_000_000_321,
      source: 'kafka:agentwatch.events/3@1234',
      reason: 'type: invalid enum value',
      raw: '{"type":"nope", "quote": "\'"}',
      raw_bytes: 30,
    };
    await t.store.insertDeadLetters([letter]);
    const stored = await rows<Record<string, unknown>>(
      `SELECT id, toUnixTimestamp64Milli(received_at) AS received_ms, source, reason, raw, raw_bytes
       FROM {db}.dead_letters WHERE id = {id:String}`,
      { id: 'dl-1' },
    );
    expect(
      stored.map(({ received_ms, ...row }) => ({ ...row, received_at: Number(received_ms), raw_bytes: Number(row.raw_bytes) })),
    ).toEqual([letter]);
  });

  it('ignores empty inserts', async () => {
    await t.store.insertVerdicts([]);
    await t.store.upsertAlerts([]);
    expect(await t.store.listVerdicts({ tenant: 'rt-empty', limit: 10 })).toEqual([]);
  });
});

describe('replays and versions', () => {
  it('collapses a replayed verdict to one row', async () => {
    const first = verdict({ verdict_id: 'dup-v', tenant: 'dup', reason: 'first write' });
    const replay = { ...first, reason: 'replayed write' };
    await t.store.insertVerdicts([first]);
    await t.store.insertVerdicts([replay]);
    expect(await t.store.listVerdicts({ tenant: 'dup', limit: 10 })).toEqual([replay]);
    const counted = await rows<{ n: string }>('SELECT count() AS n FROM {db}.verdicts FINAL WHERE verdict_id = {id:String}', { id: 'dup-v' });
    expect(counted.map((r) => Number(r.n))).toEqual([1]);
  });

  it('keeps the alert version with the highest updated_at, whatever the write order', async () => {
    const open = alert({ alert_id: 'ver-a', tenant: 'ver', status: 'open', count: 5, updated_at: 2_000 });
    const stale = alert({ alert_id: 'ver-a', tenant: 'ver', status: 'resolved', count: 1, updated_at: 1_000, resolved_at: 1_000 });
    await t.store.upsertAlerts([open]);
    await t.store.upsertAlerts([stale]);
    expect(await t.store.getAlert('ver-a', 'ver')).toEqual(open);
    expect((await t.store.loadActiveAlerts()).filter((a) => a.tenant === 'ver')).toEqual([open]);

    const resolved = { ...open, status: 'resolved' as const, updated_at: 3_000, resolved_at: 3_000 };
    await t.store.upsertAlerts([resolved]);
    expect(await t.store.getAlert('ver-a')).toEqual(resolved);
    expect((await t.store.loadActiveAlerts()).filter((a) => a.tenant === 'ver')).toEqual([]);
  });

  it('loads open and acknowledged alerts as active', async () => {
    const acked = alert({ alert_id: 'act-1', tenant: 'active', status: 'acknowledged', acknowledged_by: 'ana' });
    const open = alert({ alert_id: 'act-2', tenant: 'active', status: 'open' });
    const done = alert({ alert_id: 'act-3', tenant: 'active', status: 'resolved', resolved_at: 5 });
    await t.store.upsertAlerts([done, open, acked]);
    expect((await t.store.loadActiveAlerts()).filter((a) => a.tenant === 'active')).toEqual([acked, open]);
  });
});

describe('listAlerts', () => {
  const base = 1_700_000_000_000;
  // 25 alerts of one tenant; pairs share last_seen so the alert_id tie-break matters.
  const acme = Array.from({ length: 25 }, (_, i) =>
    alert({
      alert_id: `la-${String(i).padStart(2, '0')}`,
      tenant: 'la-acme',
      last_seen: base + Math.floor(i / 2) * 1000,
      first_seen: base - 10_000 + i,
      status: i % 5 === 0 ? 'resolved' : i % 5 === 1 ? 'acknowledged' : 'open',
      severity: i % 2 === 0 ? 'high' : 'low',
      policy_id: i < 10 ? 'p-rate' : 'p-shell',
      policy_type: i < 10 ? 'rate_spike' : 'unauthorized_api',
      agent_id: `agent-${i % 3}`,
      updated_at: base + i,
    }),
  );
  const other = [alert({ alert_id: 'la-other-1', tenant: 'la-other', last_seen: base + 99_000 })];
  const newestFirst = [...acme].sort((a, b) => b.last_seen - a.last_seen || (a.alert_id < b.alert_id ? 1 : -1));

  beforeAll(async () => {
    await t.store.upsertAlerts([...acme, ...other]);
  });

  it('pages through 25 alerts 10 at a time, newest first, without gaps or repeats', async () => {
    const pages: Alert[][] = [];
    let cursor: string | null = null;
    do {
      const page = await t.store.listAlerts({ tenant: 'la-acme', limit: 10, cursor });
      pages.push(page.items);
      cursor = page.next_cursor;
    } while (cursor !== null && pages.length < 10);
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual(newestFirst);
  });

  it('returns no cursor when the last page is exactly full', async () => {
    const page = await t.store.listAlerts({ tenant: 'la-acme', limit: 25 });
    expect(page.items).toHaveLength(25);
    expect(page.next_cursor).toBeNull();
  });

  it('applies each filter', async () => {
    const ids = async (filter: Parameters<TestStore['store']['listAlerts']>[0]): Promise<string[]> =>
      (await t.store.listAlerts(filter)).items.map((a) => a.alert_id).sort();
    const expectIds = (predicate: (a: Alert) => boolean): string[] => acme.filter(predicate).map((a) => a.alert_id).sort();

    expect(await ids({ tenant: 'la-acme', status: 'acknowledged', limit: 100 })).toEqual(expectIds((a) => a.status === 'acknowledged'));
    expect(await ids({ tenant: 'la-acme', severity: 'low', limit: 100 })).toEqual(expectIds((a) => a.severity === 'low'));
    expect(await ids({ tenant: 'la-acme', policy_id: 'p-rate', limit: 100 })).toEqual(expectIds((a) => a.policy_id === 'p-rate'));
    expect(await ids({ tenant: 'la-acme', policy_type: 'unauthorized_api', agent_id: 'agent-1', limit: 100 })).toEqual(
      expectIds((a) => a.policy_type === 'unauthorized_api' && a.agent_id === 'agent-1'),
    );
    // Overlap of [first_seen, last_seen] with [from, to).
    const from = base + 5_000;
    const to = base - 10_000 + 3;
    expect(await ids({ tenant: 'la-acme', from, limit: 100 })).toEqual(expectIds((a) => a.last_seen >= from));
    expect(await ids({ tenant: 'la-acme', to, limit: 100 })).toEqual(expectIds((a) => a.first_seen < to));
    expect(expectIds((a) => a.first_seen < to)).toHaveLength(3);
  });

  it('filters on silenced and on alert ids', async () => {
    const muted = [
      alert({ alert_id: 'sil-a1', tenant: 'la-silenced', silenced_by: 'sil-1' }),
      alert({ alert_id: 'sil-a2', tenant: 'la-silenced', silenced_by: 'sil-2', status: 'acknowledged' }),
    ];
    const loud = alert({ alert_id: 'sil-a3', tenant: 'la-silenced' });
    await t.store.upsertAlerts([...muted, loud]);
    const ids = async (filter: Omit<Parameters<TestStore['store']['listAlerts']>[0], 'limit'>): Promise<string[]> =>
      (await t.store.listAlerts({ limit: 100, ...filter })).items.map((a) => a.alert_id).sort();
    expect(await ids({ tenant: 'la-silenced', silenced: true })).toEqual(['sil-a1', 'sil-a2']);
    expect(await ids({ tenant: 'la-silenced', silenced: false })).toEqual(['sil-a3']);
    expect(await ids({ tenant: 'la-silenced', silenced: true, status: 'open' })).toEqual(['sil-a1']);
    expect(await ids({ tenant: 'la-silenced' })).toEqual(['sil-a1', 'sil-a2', 'sil-a3']);
    // A later version clears silenced_by: FINAL applies before the filter.
    await t.store.upsertAlerts([{ ...muted[0]!, silenced_by: '', count: 2, updated_at: muted[0]!.updated_at + 1 }]);
    expect(await ids({ tenant: 'la-silenced', silenced: true })).toEqual(['sil-a2']);

    expect(await ids({ alert_ids: ['sil-a3', 'la-00', 'missing', "' OR 1=1 --"] })).toEqual(['la-00', 'sil-a3']);
    expect(await ids({ alert_ids: ['sil-a3', 'la-00'], tenant: 'la-acme' })).toEqual(['la-00']);
    expect(await ids({ alert_ids: [] })).toEqual([]);
  });

  it('keeps tenants apart', async () => {
    const otherPage = await t.store.listAlerts({ tenant: 'la-other', limit: 100 });
    expect(otherPage.items).toEqual(other);
    expect(await t.store.getAlert('la-00', 'la-other')).toBeNull();
    expect(await t.store.getAlert('la-00', 'la-acme')).toEqual(acme[0]);
    const all = await t.store.listAlerts({ limit: 10_000 });
    expect(all.items.filter((a) => a.tenant === 'la-acme')).toHaveLength(25);
    expect(all.items.some((a) => a.tenant === 'la-other')).toBe(true);
  });

  it('treats quotes and SQL in filter values as data', async () => {
    const tricky = "o'hara \"q\" \\ {tenant:String} '; DROP TABLE alerts; --";
    const mine = alert({ alert_id: "id'with\"quotes", tenant: tricky });
    await t.store.upsertAlerts([mine]);

    expect((await t.store.listAlerts({ tenant: "la-acme'; DROP TABLE alerts; --", limit: 10 })).items).toEqual([]);
    expect((await t.store.listAlerts({ tenant: "x' OR '1'='1", limit: 10 })).items).toEqual([]);
    expect((await t.store.listAlerts({ tenant: tricky, limit: 10 })).items).toEqual([mine]);
    expect(await t.store.getAlert("id'with\"quotes", tricky)).toEqual(mine);
    expect(await t.store.getAlert("' OR 1=1 --")).toBeNull();
    expect(await t.store.listVerdicts({ agent_id: "'; DROP TABLE verdicts; --", limit: 10 })).toEqual([]);
    // The tables are intact.
    expect((await t.store.listAlerts({ tenant: 'la-acme', limit: 100 })).items).toHaveLength(25);
  });

  it('rejects bad cursors and limits', async () => {
    await expectStorageError(t.store.listAlerts({ limit: 10, cursor: 'not a cursor' }), 'AW_STORAGE_INVALID_CURSOR');
    const forged = Buffer.from(JSON.stringify([1, "1' OR 1=1", 'x'])).toString('base64url');
    await expectStorageError(t.store.listAlerts({ limit: 10, cursor: forged }), 'AW_STORAGE_INVALID_CURSOR');
    await expectStorageError(t.store.listAlerts({ limit: 0 }), 'AW_STORAGE_INVALID_FILTER');
    await expectStorageError(t.store.listAlerts({ limit: 2.5 }), 'AW_STORAGE_INVALID_FILTER');
    await expectStorageError(t.store.listVerdicts({ limit: 10, from: -1 }), 'AW_STORAGE_INVALID_FILTER');
    expect(decodeAlertCursor(encodeAlertCursor({ last_seen: 42, alert_id: 'a/b+c' }))).toEqual({ last_seen: 42, alert_id: 'a/b+c' });
  });
});

describe('listVerdicts', () => {
  const vs = Array.from({ length: 6 }, (_, i) =>
    verdict({
      verdict_id: `lv-${i}`,
      tenant: i < 5 ? 'lv-acme' : 'lv-other',
      time: 1_700_000_000_000 + i * 1000,
      agent_id: `agent-${i % 2}`,
      policy_id: i < 3 ? 'p-a' : 'p-b',
      decision: i % 3 === 0 ? 'deny' : 'allow',
    }),
  );

  beforeAll(async () => {
    await t.store.insertVerdicts(vs);
  });

  it('filters, orders newest first and limits', async () => {
    const ids = async (filter: Parameters<TestStore['store']['listVerdicts']>[0]): Promise<string[]> =>
      (await t.store.listVerdicts(filter)).map((v) => v.verdict_id);
    expect(await ids({ tenant: 'lv-acme', limit: 100 })).toEqual(['lv-4', 'lv-3', 'lv-2', 'lv-1', 'lv-0']);
    expect(await ids({ tenant: 'lv-acme', limit: 2 })).toEqual(['lv-4', 'lv-3']);
    expect(await ids({ tenant: 'lv-acme', agent_id: 'agent-1', limit: 100 })).toEqual(['lv-3', 'lv-1']);
    expect(await ids({ tenant: 'lv-acme', policy_id: 'p-a', decision: 'deny', limit: 100 })).toEqual(['lv-0']);
    expect(await ids({ tenant: 'lv-acme', from: 1_700_000_001_000, to: 1_700_000_003_000, limit: 100 })).toEqual(['lv-2', 'lv-1']);
    expect(await ids({ tenant: 'lv-other', limit: 100 })).toEqual(['lv-5']);
  });
});

describe('errors', () => {
  it('marks transient ClickHouse and network failures retriable, others not', () => {
    const serverError = (code: string): Error => Object.assign(new Error(`code ${code}`), { code });
    expect(toStorageError('AW_STORAGE_INSERT_FAILED', 'x', serverError('252')).retriable).toBe(true);
    expect(toStorageError('AW_STORAGE_INSERT_FAILED', 'x', serverError('60')).retriable).toBe(false);
    expect(toStorageError('AW_STORAGE_INSERT_FAILED', 'x', serverError('ECONNREFUSED')).retriable).toBe(true);
    expect(toStorageError('AW_STORAGE_INSERT_FAILED', 'x', new Error('Timeout error.')).retriable).toBe(true);
  });

  it('reports a failed insert as AW_STORAGE_INSERT_FAILED, not retriable, with the cause', async () => {
    const fresh = await openTestStore();
    try {
      await fresh.client.command({ query: `DROP TABLE ${fresh.database}.verdicts SYNC` });
      const error = await expectStorageError(fresh.store.insertVerdicts([verdict()]), 'AW_STORAGE_INSERT_FAILED');
      expect(error.retriable).toBe(false);
      expect(error.cause).toBeInstanceOf(Error);
      await expectStorageError(fresh.store.listVerdicts({ limit: 1 }), 'AW_STORAGE_QUERY_FAILED');
    } finally {
      await fresh.close();
    }
  });
});
