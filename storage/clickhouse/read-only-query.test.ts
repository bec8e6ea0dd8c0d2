import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, AuditRecord, Verdict } from '../../core/records.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { makeEvent } from '../../test/support/events.js';
import {
  QUERYABLE_TABLES,
  QueryInvalid,
  QueryLimitExceeded,
  QueryRefused,
  runReadOnlyQuery,
  type QueryRefusalReason,
  type ReadOnlyQueryOptions,
  type ReadOnlyQueryResult,
} from './read-only-query.js';

let t: TestStore;
/** A second agentwatch database in the same engine: its rows must stay out of reach. */
let other: TestStore;

/** Tenant ids with the characters a filter expression must escape. */
const QUOTE_TENANT = "o'b\\x";
const INJECTION_TENANT = "acme' OR 1 = 1 OR tenant = '";

const TIME = Date.UTC(2026, 10, 24, 10, 0, 0);

function verdict(id: string, tenant: string, overrides: Partial<Verdict> = {}): Verdict {
  return {
    verdict_id: id,
    event_id: `e-${id}`,
    time: TIME,
    tenant,
    agent_id: 'agent-1',
    agent_name: 'coder',
    event_type: 'tool_call',
    policy_id: 'p-shell',
    policy_type: 'unauthorized_api',
    severity: 'high',
    action: 'block',
    decision: 'deny',
    would_decide: 'deny',
    mode: 'strict',
    reason: `reason of ${id}`,
    evidence: { tool: 'shell' },
    atlas: ['AML.T0051', 'AML.T0053'],
    late: false,
    exception: '',
    ...overrides,
  };
}

function alert(id: string, tenant: string, overrides: Partial<Alert> = {}): Alert {
  return {
    alert_id: id,
    tenant,
    policy_id: 'p-shell',
    policy_type: 'unauthorized_api',
    agent_id: 'agent-1',
    severity: 'high',
    status: 'open',
    count: 1,
    first_seen: TIME,
    last_seen: TIME,
    title: 'Unauthorized tool',
    reason: 'tool "shell" is not allowed',
    verdict_ids: [],
    evidence: { tool: 'shell' },
    atlas: [],
    updated_at: TIME,
    acknowledged_by: '',
    resolved_at: 0,
    source_partition: 0,
    source_offset: 0,
    silenced_by: '',
    comment: '',
    ...overrides,
  };
}

function audit(eventId: string, tenant: string, seq: number): AuditRecord {
  return {
    event_id: eventId,
    time: TIME,
    tenant,
    bus_partition: 0,
    agent_id: 'agent-1',
    event_type: 'tool_call',
    decision: 'deny',
    would_decide: 'deny',
    mode: 'strict',
    matched_policies: ['p-shell'],
    verdict_ids: [],
    policy_version: 'v1',
    evaluated_at: TIME,
    seq,
    prev_hash: '',
    hash: `h-${eventId}`,
  };
}

beforeAll(async () => {
  t = await openTestStore();
  other = await openTestStore();
  await t.store.insertVerdicts([
    verdict('v-a1', 'acme'),
    verdict('v-a2', 'acme', { agent_id: 'agent-2', reason: 'DROP TABLE' }),
    verdict('v-g1', 'globex'),
    verdict('v-g2', 'globex', { agent_id: 'agent-2' }),
    verdict('v-g3', 'globex'),
    verdict('v-q1', QUOTE_TENANT),
  ]);
  await t.store.insertEvents([
    makeEvent({ event_id: 'ev-a1', tenant: 'acme', type: 'capability_change', capabilities: ['file_read'] }),
    makeEvent({ event_id: 'ev-g1', tenant: 'globex', type: 'capability_change', capabilities: ['shell_execute'] }),
    makeEvent({ event_id: 'ev-g2', tenant: 'globex' }),
  ]);
  await t.store.insertAudit([audit('ev-a1', 'acme', 1), audit('ev-g1', 'globex', 2), audit('ev-g2', 'globex', 3)]);
  // Two versions of the acme alert: FINAL keeps one.
  await t.store.upsertAlerts([alert('al-a1', 'acme'), alert('al-g1', 'globex'), alert('al-g2', 'globex', { agent_id: 'agent-2' })]);
  await t.store.upsertAlerts([alert('al-a1', 'acme', { count: 2, updated_at: TIME + 1 })]);
  await t.store.insertDeadLetters([{ id: 'dl-1', received_at: TIME, source: 'http', reason: 'bad json', raw: '{', raw_bytes: 1 }]);
  await other.store.insertVerdicts([verdict('v-other', 'acme')]);
});

afterAll(async () => {
  await other?.close();
  await t?.close();
});

function run(sql: string, options: Omit<ReadOnlyQueryOptions, 'sql'> = {}): Promise<ReadOnlyQueryResult> {
  return runReadOnlyQuery(t.client, t.database, { sql, ...options });
}

/** The rows' values of one column. */
async function column(sql: string, name: string, options: Omit<ReadOnlyQueryOptions, 'sql'> = {}): Promise<unknown[]> {
  const result = await run(sql, options);
  return result.rows.map((row) => row[name]);
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the query to fail');
    },
    (error: unknown) => error,
  );
}

async function refused(sql: string, reason: QueryRefusalReason, options: Omit<ReadOnlyQueryOptions, 'sql'> = {}): Promise<QueryRefused> {
  const error = await failure(run(sql, options));
  expect(error).toBeInstanceOf(QueryRefused);
  expect(error).toMatchObject({ code: 'AW_QUERY_REFUSED', reason });
  return error as QueryRefused;
}

describe('runReadOnlyQuery: results', () => {
  it('returns columns with types, rows as objects and 64-bit integers as exact strings', async () => {
    const result = await run('SELECT verdict_id, late, atlas, toUInt64(9007199254740993) AS big FROM verdicts WHERE verdict_id = {id:String}', {
      params: { id: 'v-a1' },
    });
    expect(result.columns).toEqual([
      { name: 'verdict_id', type: 'String' },
      { name: 'late', type: 'Bool' },
      { name: 'atlas', type: 'Array(String)' },
      { name: 'big', type: 'UInt64' },
    ]);
    expect(result.rows).toEqual([{ verdict_id: 'v-a1', late: false, atlas: ['AML.T0051', 'AML.T0053'], big: '9007199254740993' }]);
    expect(result.row_count).toBe(1);
    expect(result.truncated).toBe(false);
    expect(result.elapsed_ms).toBeGreaterThanOrEqual(0);
  });

  it('resolves unqualified, qualified and quoted table names to the agentwatch database', async () => {
    const sqls = [
      'SELECT count() AS n FROM verdicts',
      `SELECT count() AS n FROM ${t.database}.verdicts`,
      'SELECT count() AS n FROM `verdicts`',
      `SELECT count() AS n FROM "${t.database}"."verdicts"`,
    ];
    for (const sql of sqls) expect(await column(sql, 'n'), sql).toEqual(['6']);
    // Comma joins and JOINs are qualified too; ARRAY JOIN takes a column.
    expect(await column('SELECT count() AS n FROM verdicts AS v, alerts AS a ARRAY JOIN v.atlas AS technique', 'n')).toEqual(['48']);
    expect(await column('SELECT count() AS n FROM verdicts v LEFT JOIN alerts AS a FINAL ON a.tenant = v.tenant', 'n')).toEqual(['9']);
  });

  it('binds parameters as values, never as SQL', async () => {
    const params = { tenant: "acme' OR '1' = '1", agents: ['agent-1', 'agent-2'] };
    const rows = await column('SELECT verdict_id FROM verdicts WHERE tenant = {tenant:String} AND agent_id IN {agents:Array(String)}', 'verdict_id', { params });
    expect(rows).toEqual([]);
  });

  it('accepts a single trailing semicolon', async () => {
    expect(await column('SELECT 1 AS one;  -- done', 'one')).toEqual([1]);
  });

  it('truncates the result to maxRows and says so; exactly maxRows rows are not truncated', async () => {
    const ten = await run('SELECT arrayJoin(range(10)) AS n ORDER BY n', { maxRows: 10 });
    expect(ten).toMatchObject({ row_count: 10, truncated: false });
    const cut = await run('SELECT arrayJoin(range(100000)) AS n ORDER BY n DESC', { maxRows: 5 });
    expect(cut).toMatchObject({ row_count: 5, truncated: true });
    expect(cut.rows.map((row) => row.n)).toEqual([99999, 99998, 99997, 99996, 99995]);
    const union = await run('SELECT verdict_id FROM verdicts UNION ALL SELECT alert_id FROM alerts', { maxRows: 4 });
    expect(union).toMatchObject({ row_count: 4, truncated: true });
    const page = await run('SELECT arrayJoin(range(100)) AS n ORDER BY n LIMIT 10 OFFSET 50', { maxRows: 3 });
    expect(page.rows.map((row) => row.n)).toEqual([50, 51, 52]);
    expect(page.truncated).toBe(true);
  });

  it('applies maxRows to the result only, not to subqueries', async () => {
    const result = await run('SELECT count() AS n FROM (SELECT arrayJoin(range(1000)) AS x) WHERE x IN (SELECT arrayJoin(range(500)))', { maxRows: 1 });
    expect(result.rows).toEqual([{ n: '500' }]);
    expect(result.truncated).toBe(false);
  });

  it('stops a query at maxSeconds with QueryLimitExceeded', async () => {
    // A billion rows per verdict, generated rather than read, so only the time limit stops it.
    const sql = 'SELECT count() FROM verdicts ARRAY JOIN range(1000) AS x ARRAY JOIN range(1000) AS y ARRAY JOIN range(1000) AS z';
    const error = await failure(run(sql, { maxSeconds: 0.3 }));
    expect(error).toBeInstanceOf(QueryLimitExceeded);
    expect(error).toMatchObject({ code: 'AW_QUERY_LIMIT_EXCEEDED', limit: 'max_seconds' });
    // chdb hands a failed query's partial output to the next query on the session; none may be left.
    const next = await t.client.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow' });
    expect(await next.text()).toBe('{"one":1}\n');
  });

  it('reports ClickHouse errors as QueryInvalid with ClickHouse’s message', async () => {
    const syntax = await failure(run('SELECT FROM WHERE'));
    expect(syntax).toBeInstanceOf(QueryInvalid);
    expect(syntax).toMatchObject({ code: 'AW_QUERY_INVALID', clickhouseCode: '62' });
    const unknownColumn = await failure(run('SELECT no_such_column FROM verdicts'));
    expect(unknownColumn).toBeInstanceOf(QueryInvalid);
    expect((unknownColumn as QueryInvalid).message).toContain('no_such_column');
    const unknownTable = await failure(run('SELECT * FROM no_such_table'));
    expect(unknownTable).toBeInstanceOf(QueryInvalid);
    expect((unknownTable as QueryInvalid).message).toContain('no_such_table');
    const missingParam = await failure(run('SELECT {missing:String}'));
    expect(missingParam).toBeInstanceOf(QueryInvalid);
    expect((missingParam as QueryInvalid).message).toContain('missing');
  });

  it('validates its options, naming the bound', async () => {
    expect((await refused('SELECT 1', 'invalid_option', { maxRows: 100_001 })).message).toContain('100000');
    await refused('SELECT 1', 'invalid_option', { maxRows: 0 });
    await refused('SELECT 1', 'invalid_option', { maxRows: 2.5 });
    expect((await refused('SELECT 1', 'invalid_option', { maxSeconds: 61 })).message).toContain('60');
    await refused('SELECT 1', 'invalid_option', { maxSeconds: 0 });
    await refused('SELECT 1', 'invalid_option', { tenant: '' });
    await refused('SELECT 1', 'invalid_option', { tenant: 'a\u0000b' });
    expect((await refused('SELECT {a:String}', 'invalid_option', { params: { 'a-b': 1 } })).message).toContain('a-b');
  });

  it('leaves the shared session as it found it: no readonly, no filter, same database', async () => {
    await run('SELECT count() FROM verdicts', { tenant: 'acme' });
    const result = await t.client.query({
      query: `SELECT getSetting('readonly') AS ro, currentDatabase() AS db, (SELECT count() FROM ${t.database}.verdicts) AS n`,
      format: 'JSONEachRow',
    });
    expect(await result.json()).toEqual([{ ro: 0, db: 'default', n: '6' }]);
    // Writes still work.
    await t.store.insertDeadLetters([{ id: 'dl-2', received_at: TIME, source: 'http', reason: 'bad json', raw: '[', raw_bytes: 1 }]);
    expect(await column('SELECT count() AS n FROM dead_letters WHERE id = {id:String}', 'n', { params: { id: 'dl-2' } })).toEqual(['1']);
  });
});

describe('runReadOnlyQuery: refusals', () => {
  it('refuses a second statement', async () => {
    const error = await refused('SELECT 1; DROP TABLE verdicts', 'multiple_statements');
    expect(error.message).toMatch(/one statement/);
    await refused('SELECT 1;;', 'multiple_statements');
    await refused(`SELECT 1; SELECT * FROM ${t.database}.verdicts`, 'multiple_statements');
    expect(await column('SELECT count() AS n FROM verdicts', 'n')).toEqual(['6']);
  });

  it.each([
    ['INSERT INTO verdicts (verdict_id) VALUES (1)'],
    ['ALTER TABLE verdicts DELETE WHERE 1'],
    ['DROP TABLE verdicts'],
    ['CREATE TABLE x (a Int8) ENGINE = Memory'],
    ['TRUNCATE TABLE verdicts'],
    ['SYSTEM FLUSH LOGS'],
    ['KILL QUERY WHERE 1'],
    ['OPTIMIZE TABLE verdicts FINAL'],
    ['SET readonly = 0'],
    ['GRANT SELECT ON *.* TO default'],
    ['SHOW TABLES'],
    ['DESCRIBE TABLE verdicts'],
    ['EXPLAIN SELECT 1'],
    ['USE system'],
  ])('refuses a statement other than SELECT: %s', async (sql) => {
    const error = await failure(run(sql));
    expect(error).toBeInstanceOf(QueryRefused);
    expect((error as QueryRefused).message).toMatch(/not allowed|only SELECT/);
  });

  it.each([
    ['SELECT * FROM (EXPLAIN SELECT 1)', 'forbidden_keyword'],
    ['SELECT 1 PARALLEL WITH SELECT 2', 'forbidden_keyword'],
    ['WITH x AS (SELECT 1) INSERT INTO verdicts SELECT * FROM verdicts', 'forbidden_keyword'],
  ] as const)('refuses statement keywords inside a SELECT: %s', async (sql, reason) => {
    await refused(sql, reason);
  });

  it.each([
    ["SELECT * FROM file('/etc/hostname', 'LineAsString')", 'file'],
    ["SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')", 'url'],
    ["SELECT * FROM s3('http://127.0.0.1:9/bucket/key.csv', 'CSV')", 's3'],
    ["SELECT * FROM remote('127.0.0.1', 'default', 'verdicts')", 'remote'],
    ["SELECT * FROM mysql('127.0.0.1:9', 'db', 't', 'user', 'password')", 'mysql'],
    ["SELECT * FROM executable('cat /etc/passwd', 'TSV', 'line String')", 'executable'],
    ["SELECT * FROM input('a String')", 'input'],
    ['SELECT * FROM numbers(3)', 'numbers'],
    ["SELECT count() FROM merge('.*', 'verdicts')", 'merge'],
    ['SELECT * FROM view(SELECT * FROM verdicts)', 'view'],
    ['SELECT * FROM verdicts v JOIN numbers(3) n ON 1', 'numbers'],
    ["SELECT * FROM (SELECT * FROM file('/etc/passwd', 'LineAsString'))", 'file'],
  ])('refuses the table function in %s', async (sql, name) => {
    const error = await refused(sql, 'table_function');
    expect(error.message).toContain(name);
  });

  it('refuses a table function before ClickHouse touches its source', async () => {
    // The analyzer fetches a URL to infer its schema, so the refusal must come from the parse tree, before it.
    let requests = 0;
    const server = createServer((_request, response) => {
      requests++;
      response.end('a\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await refused(`SELECT * FROM url('http://127.0.0.1:${port}/data.csv', 'CSV')`, 'table_function');
      await refused(`SELECT count() FROM verdicts WHERE tenant IN (SELECT * FROM url('http://127.0.0.1:${port}/t.csv', 'CSV'))`, 'table_function');
      expect(requests).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it.each([
    ["SELECT file('/etc/hostname')", 'file'],
    ["SELECT dictGet('d', 'a', 1)", 'dictGet'],
    ["SELECT getSetting('additional_table_filters')", 'getSetting'],
    ["SELECT joinGet('j', 'v', 1)", 'joinGet'],
    ["SELECT hasColumnInTable('system', 'users', 'name')", 'hasColumnInTable'],
    ['SELECT hostname()', 'hostname'],
    ['SELECT sleep(1)', 'sleep'],
  ])('refuses the function in %s', async (sql, name) => {
    expect((await refused(sql, 'forbidden_function')).message).toContain(name);
  });

  it.each([
    ['SELECT * FROM system.tables', 'forbidden_table'],
    ['SELECT name FROM system.databases', 'forbidden_table'],
    ['SELECT * FROM information_schema.tables', 'forbidden_table'],
    ['SELECT * FROM INFORMATION_SCHEMA.TABLES', 'forbidden_table'],
    // Quoted: passes the lexical scan, caught by the parse tree.
    ['SELECT * FROM `system`.`tables`', 'forbidden_table'],
    ['SELECT * FROM "information_schema"."tables"', 'forbidden_table'],
  ] as const)('refuses system tables: %s', async (sql, reason) => {
    await refused(sql, reason);
  });

  it('refuses tables outside the agentwatch database and tables not listed as queryable', async () => {
    const error = await refused(`SELECT count() FROM ${other.database}.verdicts`, 'forbidden_table');
    expect(error.message).toContain(`${other.database}.verdicts`);
    await refused(`SELECT * FROM verdicts WHERE verdict_id IN (SELECT verdict_id FROM ${other.database}.verdicts)`, 'forbidden_table');
    await refused(`SELECT * FROM verdicts WHERE verdict_id IN ${other.database}.verdicts`, 'forbidden_table');
    await refused(`SELECT * FROM ${t.database}.schema_migrations`, 'forbidden_table');
    await refused(`SELECT * FROM ${t.database}.capability_history_mv`, 'forbidden_table');
    // An unqualified name that is not queryable resolves to the session's database, never to ours.
    // (There is no default.schema_migrations, so ClickHouse reports the table unknown.)
    expect(await failure(run('SELECT * FROM schema_migrations'))).toBeInstanceOf(QueryInvalid);
    expect(QUERYABLE_TABLES).toEqual(['events', 'verdicts', 'audit_log', 'alerts', 'capability_history', 'dead_letters']);
  });

  it('refuses, after resolving names, a table of the session database that is not ours', async () => {
    // Layers 1 and 2 take an unqualified unknown name for a CTE; the analyzer resolves it.
    const table = `aw_rq_${t.database.slice(-6)}`;
    await t.client.command({ query: `CREATE TABLE default.${table} (tenant String) ENGINE = Memory` });
    try {
      await t.client.command({ query: `INSERT INTO default.${table} VALUES ('globex')` });
      expect((await refused(`SELECT * FROM ${table}`, 'forbidden_table')).message).toContain(`default.${table}`);
      await refused(`SELECT count() FROM verdicts WHERE tenant IN ${table}`, 'forbidden_table');
      await refused(`WITH x AS (SELECT * FROM ${table}) SELECT * FROM x`, 'forbidden_table');
    } finally {
      await t.client.command({ query: `DROP TABLE IF EXISTS default.${table}` });
    }
  });

  it.each([
    ['SELECT count() FROM verdicts SETTINGS readonly = 0', 'settings_clause'],
    ['SELECT count() FROM (SELECT * FROM verdicts SETTINGS additional_table_filters = {})', 'settings_clause'],
    ['SELECT count() FROM verdicts FORMAT CSV', 'forbidden_keyword'],
    ["SELECT count() FROM verdicts INTO OUTFILE '/tmp/aw-out.csv'", 'forbidden_keyword'],
    ['SELECT count() FROM verdicts /* x */ settings max_threads = 1', 'settings_clause'],
  ] as const)('refuses clauses that would override limits or output: %s', async (sql, reason) => {
    await refused(sql, reason);
  });

  it.each([
    ['SELECT 1 -- comment\n; DROP TABLE verdicts', 'multiple_statements'],
    ['SELECT 1 # comment\n; DROP TABLE verdicts', 'multiple_statements'],
    ['SELECT 1 -- comment\r; DROP TABLE verdicts', 'multiple_statements'],
    ['SELECT 1 /* ok */ ; /* hidden */ DROP TABLE verdicts', 'multiple_statements'],
    ['SELECT 1 --\nSETTINGS readonly = 0', 'settings_clause'],
    ['SELECT 1 /* nested /* comment */ ; DROP TABLE verdicts */', 'unsupported_syntax'],
    ['SELECT 1 /* unterminated', 'unsupported_syntax'],
    ["SELECT $$ ' $$, 1; DROP TABLE verdicts --'", 'unsupported_syntax'],
    ["SELECT 'unterminated", 'unsupported_syntax'],
    ['SELECT (1', 'unsupported_syntax'],
    ['SELECT 1) UNION ALL (SELECT 2', 'unsupported_syntax'],
  ] as const)('does not let comments or literals hide tokens: %j', async (sql, reason) => {
    await refused(sql, reason);
  });

  it('does not refuse keywords inside strings, quoted identifiers or comments', async () => {
    expect(await column("SELECT verdict_id FROM verdicts WHERE reason = 'DROP TABLE'", 'verdict_id')).toEqual(['v-a2']);
    const result = await run(
      "SELECT 'x; DROP TABLE verdicts SETTINGS readonly = 0 FORMAT CSV' AS `select`, 'it\\'s' AS a, 'it''s' AS b, \"system\" -- ; DROP\n FROM (SELECT 1 AS \"system\") /* ; SETTINGS */",
    );
    expect(result.rows).toEqual([{ select: 'x; DROP TABLE verdicts SETTINGS readonly = 0 FORMAT CSV', a: "it's", b: "it's", system: 1 }]);
    // format() the function is fine; only the FORMAT clause is refused.
    expect(await column("SELECT format('{}-{}', 'a', 'b') AS s", 's')).toEqual(['a-b']);
  });

  it('refuses Identifier parameters, which would splice a name into the query', async () => {
    await refused('SELECT count() FROM {table:Identifier}', 'identifier_parameter', { params: { table: 'system.users' } });
  });

  it('refuses a CTE named like a queryable table', async () => {
    await refused("WITH verdicts AS (SELECT 'x' AS tenant) SELECT * FROM verdicts", 'unsupported_syntax');
  });
});

describe('runReadOnlyQuery: tenant scoping', () => {
  const acme = { tenant: 'acme' } as const;

  it('shows a tenant only its rows, while an unscoped caller sees all tenants', async () => {
    expect(await column('SELECT DISTINCT tenant FROM verdicts ORDER BY tenant', 'tenant')).toEqual(['acme', 'globex', QUOTE_TENANT]);
    expect(await column('SELECT verdict_id FROM verdicts ORDER BY verdict_id', 'verdict_id', acme)).toEqual(['v-a1', 'v-a2']);
    expect(await column(`SELECT verdict_id FROM ${t.database}.verdicts WHERE tenant = 'globex'`, 'verdict_id', acme)).toEqual([]);
  });

  it.each([
    ['count(*)', 'SELECT count(*) AS n FROM verdicts', '2'],
    ['count() with FINAL', 'SELECT count() AS n FROM alerts FINAL', '1'],
    ['rows with FINAL', "SELECT toString(groupArray(alert_id)) AS n FROM alerts FINAL", "['al-a1']"],
    ['uniqExact', 'SELECT uniqExact(tenant) AS n FROM events', '1'],
    ['min/max', "SELECT toString(min(verdict_id)) || '..' || toString(max(verdict_id)) AS n FROM verdicts", 'v-a1..v-a2'],
    ['JOIN', 'SELECT count() AS n FROM verdicts v JOIN alerts AS a FINAL ON v.agent_id = a.agent_id', '1'],
    ['JOIN on tenant', 'SELECT count() AS n FROM verdicts v JOIN events e ON v.tenant = e.tenant', '2'],
    ['subquery in FROM', 'SELECT count() AS n FROM (SELECT * FROM verdicts)', '2'],
    ['IN subquery', "SELECT count() AS n FROM alerts FINAL WHERE tenant IN (SELECT 'globex' UNION ALL SELECT tenant FROM verdicts)", '1'],
    ['scalar subquery', 'SELECT (SELECT count() FROM events) AS n', '1'],
    ['CTE', "WITH g AS (SELECT * FROM verdicts WHERE tenant = 'globex') SELECT count() AS n FROM g", '0'],
    ['CTE over two tables', 'WITH x AS (SELECT tenant FROM audit_log UNION ALL SELECT tenant FROM capability_history) SELECT count() AS n FROM x', '2'],
    ['UNION ALL', "SELECT toString(groupUniqArray(t)) AS n FROM (SELECT tenant AS t FROM verdicts UNION ALL SELECT tenant FROM alerts UNION ALL SELECT tenant FROM events)", "['acme']"],
    ['a WITH alias named tenant', "WITH 'globex' AS tenant SELECT count() AS n FROM verdicts", '2'],
    ['a column alias named tenant', "SELECT count() AS n FROM (SELECT 'acme' AS tenant, verdict_id FROM verdicts)", '2'],
  ])('keeps other tenants out of %s', async (_what, sql, expected) => {
    const [value] = await column(sql, 'n', acme);
    expect(String(value)).toBe(expected);
  });

  it('filters every tenant table: events, verdicts, audit_log, alerts, capability_history', async () => {
    for (const table of ['events', 'verdicts', 'audit_log', 'alerts', 'capability_history']) {
      const all = await column(`SELECT DISTINCT tenant FROM ${table} FINAL ORDER BY tenant`, 'tenant');
      expect(all, table).toContain('globex');
      expect(await column(`SELECT DISTINCT tenant FROM ${table} FINAL`, 'tenant', acme), table).toEqual(['acme']);
    }
  });

  it('refuses dead_letters to a tenant-scoped caller, and serves it to an unscoped one', async () => {
    const error = await refused('SELECT count() FROM dead_letters', 'forbidden_table', acme);
    expect(error.message).toContain('no tenant column');
    await refused('SELECT count() FROM verdicts WHERE reason IN (SELECT reason FROM dead_letters)', 'forbidden_table', acme);
    expect(await column("SELECT id FROM dead_letters WHERE id = 'dl-1'", 'id')).toEqual(['dl-1']);
  });

  it('quotes the tenant: quotes and backslashes match literally, injection matches nothing', async () => {
    expect(await column('SELECT verdict_id FROM verdicts', 'verdict_id', { tenant: QUOTE_TENANT })).toEqual(['v-q1']);
    expect(await column('SELECT count() AS n FROM verdicts', 'n', { tenant: INJECTION_TENANT })).toEqual(['0']);
    expect(await column('SELECT count() AS n FROM verdicts', 'n', { tenant: "\\' OR 1 --" })).toEqual(['0']);
  });
});
