import type { Decision, Severity } from '../../core/decision.js';
import type { AuditRecord, Page, Verdict } from '../../core/records.js';
import { StorageError } from '../errors.js';
import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';
import { AUDIT_COLUMNS, rowToAudit, rowToVerdict, toInteger, VERDICT_COLUMNS, type AuditRow, type Int64Json, type VerdictRow } from './rows.js';

// Read-side queries of the analyst API: verdict and audit search, the agents
// overview. Like the analytics store, every caller value travels as a
// `{name:Type}` query parameter; the validated database name is the only text
// spliced into SQL.
//
// Replays: every table read here is a ReplacingMergeTree whose sorting key is
// the record's identity, so reads that count or list rows use FINAL. Filters
// stay in WHERE, not PREWHERE: under FINAL, PREWHERE runs before duplicates
// collapse, while WHERE runs after. ClickHouse still uses WHERE conditions on
// `tenant` and `time` for primary-key pruning (the verdicts and events keys
// start with tenant, toDate(time)), so a tenant-bound or time-bounded search
// reads only those granules.

/** Largest page any search returns; a larger `limit` is lowered to it. */
export const MAX_SEARCH_LIMIT = 1000;

/** Most verdict ids {@link verdictsByIds} looks up at once (alerts keep a small sample). */
export const MAX_VERDICT_IDS = 1000;

const DAY_MS = 86_400_000;

/** Filters of {@link searchVerdicts}; every given filter must match. */
export interface VerdictSearch {
  /** Only this tenant's verdicts. A tenant-bound API key must always set it. */
  tenant?: string;
  agent_id?: string;
  policy_id?: string;
  policy_type?: string;
  /** Effective decision. */
  decision?: Decision;
  severity?: Severity;
  /** Event time, inclusive (epoch ms). */
  from?: number;
  /** Event time, exclusive (epoch ms). */
  to?: number;
  /** Page size, at least 1; above {@link MAX_SEARCH_LIMIT} it is lowered to it. */
  limit: number;
  /** `next_cursor` of the previous page; absent or null for the first page. */
  cursor?: string | null;
}

/** Filters of {@link searchAudit}; every given filter must match. */
export interface AuditSearch {
  /** Only this tenant's rows. A tenant-bound API key must always set it. */
  tenant?: string;
  agent_id?: string;
  /** Rows whose `matched_policies` include this policy id. */
  policy_id?: string;
  /** Effective decision for the event. */
  decision?: Decision;
  /** Event time, inclusive (epoch ms). */
  from?: number;
  /** Event time, exclusive (epoch ms). */
  to?: number;
  /** Page size, at least 1; above {@link MAX_SEARCH_LIMIT} it is lowered to it. */
  limit: number;
  /** `next_cursor` of the previous page; absent or null for the first page. */
  cursor?: string | null;
}

/** One agent as seen in the stored events, with its alerts and latest capability set and key. */
export interface AgentSummary {
  tenant: string;
  agent_id: string;
  /** Name from the newest event that reported one ('' when none did). */
  agent_name: string;
  /** Time of the agent's oldest and newest stored event (epoch ms). */
  first_seen: number;
  last_seen: number;
  /** Stored events, replays not counted twice. */
  events: number;
  /**
   * Stored events with time at or after `now - 24h` (`now` of the search).
   * Events dated after `now` count too: an agent's clock may run ahead.
   */
  events_24h: number;
  open_alerts: number;
  acknowledged_alerts: number;
  /** Latest reported capability set (sorted, unique); null when the agent never reported one. */
  capabilities: string[] | null;
  /** Event time of that capability set; null with `capabilities`. */
  capabilities_at: number | null;
  /** Latest presented public key; null when the agent never presented one. */
  key_fingerprint: string | null;
  /** That key's algorithm; null when there is no key or the agent did not report the algorithm. */
  key_algorithm: string | null;
  /** Event time of that key; null with `key_fingerprint`. */
  key_at: number | null;
}

/** Filters of {@link listAgents}; every given filter must match. */
export interface AgentSearch {
  /** Only this tenant's agents. A tenant-bound API key must always set it. */
  tenant?: string;
  /** Exact agent id. */
  agent_id?: string;
  /** Case-insensitive substring of the agent id or of its latest name (a literal, not a pattern). */
  q?: string;
  /** Page size, at least 1; above {@link MAX_SEARCH_LIMIT} it is lowered to it. */
  limit: number;
  /** `next_cursor` of the previous page; absent or null for the first page. */
  cursor?: string | null;
  /** The moment `events_24h` counts back from (epoch ms). */
  now: number;
}

/** Event-time bounds of {@link verdictsByIds}: `[from, to)`, epoch ms. */
export interface TimeBounds {
  from?: number;
  to?: number;
}

// ---------------------------------------------------------------- verdicts

// Times leave ClickHouse as epoch-ms integers under distinct aliases: an alias
// named like its column would shadow the column in WHERE and ORDER BY.

/** 64-bit integers arrive as JSON strings from a server (output_format_json_quote_64bit_integers=1), numbers from chdb. */


/**
 * Verdicts matching every given filter, newest first (event time DESC, then
 * `verdict_id` DESC), one page at a time. Keyset pagination: `next_cursor`
 * holds the last row's `(time, verdict_id)`, so pages neither repeat nor skip
 * rows when new verdicts arrive meanwhile.
 *
 * @throws StorageError `AW_STORAGE_INVALID_FILTER` for a bad limit or time bound,
 *   `AW_STORAGE_INVALID_CURSOR` for a cursor this function did not return,
 *   `AW_STORAGE_QUERY_FAILED` when the query fails.
 */
export async function searchVerdicts(client: ClickHouseClient, database: string, q: VerdictSearch): Promise<Page<Verdict>> {
  const db = assertIdentifier(database);
  const limit = pageSize(q.limit);
  const filter = new Conditions({ limit: limit + 1 });
  filter.equal('tenant', q.tenant);
  filter.equal('agent_id', q.agent_id);
  filter.equal('policy_id', q.policy_id);
  filter.equal('policy_type', q.policy_type);
  filter.equal('decision', q.decision);
  filter.equal('severity', q.severity);
  filter.timeRange(q.from, q.to);
  if (q.cursor !== undefined && q.cursor !== null) {
    const [time, verdictId] = decodeCursor(q.cursor, 'verdicts', ['uint', 'string']);
    // The plain bound lets the primary index and partitions prune; the tuple decides ties.
    filter.add(`time <= fromUnixTimestamp64Milli({cursor_time:Int64}, 'UTC')`, { cursor_time: time });
    filter.add(`(time, verdict_id) < (fromUnixTimestamp64Milli({cursor_time:Int64}, 'UTC'), {cursor_id:String})`, { cursor_id: verdictId });
  }
  const rows = await select<VerdictRow>(
    client,
    `SELECT ${VERDICT_COLUMNS} FROM ${db}.verdicts FINAL
     ${filter.where()}
     ORDER BY time DESC, verdict_id DESC
     LIMIT {limit:UInt32}`,
    filter.params,
    'searching verdicts',
  );
  const items = rows.slice(0, limit).map(rowToVerdict);
  const last = items[items.length - 1];
  const next_cursor = rows.length > limit && last !== undefined ? encodeCursor('verdicts', [last.time, last.verdict_id]) : null;
  return { items, next_cursor };
}

/**
 * The stored verdicts among `ids` (an alert's `verdict_ids`), newest first;
 * ids with no stored verdict are left out. `tenant`, when given, must match
 * too. `within` narrows the event time — pass an alert's
 * `{ from: first_seen, to: last_seen + 1 }`: the verdicts table is sorted by
 * tenant and day before `verdict_id`, so without bounds the lookup reads the
 * tenant's whole verdict history.
 *
 * @throws StorageError `AW_STORAGE_INVALID_FILTER` for more than {@link MAX_VERDICT_IDS} ids or a bad time bound.
 */
export async function verdictsByIds(
  client: ClickHouseClient,
  database: string,
  ids: readonly string[],
  tenant?: string,
  within: TimeBounds = {},
): Promise<Verdict[]> {
  const db = assertIdentifier(database);
  const unique = [...new Set(ids)];
  if (unique.length > MAX_VERDICT_IDS) {
    throw new StorageError('AW_STORAGE_INVALID_FILTER', `at most ${MAX_VERDICT_IDS} verdict ids per lookup (got ${unique.length})`);
  }
  const filter = new Conditions({});
  filter.timeRange(within.from, within.to);
  if (unique.length === 0) return [];
  filter.add('verdict_id IN {ids:Array(String)}', { ids: unique });
  filter.equal('tenant', tenant);
  const rows = await select<VerdictRow>(
    client,
    `SELECT ${VERDICT_COLUMNS} FROM ${db}.verdicts FINAL ${filter.where()} ORDER BY time DESC, verdict_id DESC`,
    filter.params,
    'reading verdicts by id',
  );
  return rows.map(rowToVerdict);
}

// ---------------------------------------------------------------- audit log



/**
 * Audit rows matching every given filter, newest first: event time DESC, then
 * the row's identity `(tenant, bus_partition, seq)` DESC — an event id alone
 * is not unique (a client may send the same event twice; each delivery is
 * judged and chained). Keyset pagination as in {@link searchVerdicts}.
 *
 * @throws StorageError `AW_STORAGE_INVALID_FILTER`, `AW_STORAGE_INVALID_CURSOR`, `AW_STORAGE_QUERY_FAILED` as {@link searchVerdicts}.
 */
export async function searchAudit(client: ClickHouseClient, database: string, q: AuditSearch): Promise<Page<AuditRecord>> {
  const db = assertIdentifier(database);
  const limit = pageSize(q.limit);
  const filter = new Conditions({ limit: limit + 1 });
  filter.equal('tenant', q.tenant);
  filter.equal('agent_id', q.agent_id);
  filter.equal('decision', q.decision);
  if (q.policy_id !== undefined) filter.add('has(matched_policies, {policy_id:String})', { policy_id: q.policy_id });
  filter.timeRange(q.from, q.to);
  if (q.cursor !== undefined && q.cursor !== null) {
    const [time, tenant, partition, seq] = decodeCursor(q.cursor, 'audit', ['uint', 'string', 'int', 'uint']);
    filter.add(`time <= fromUnixTimestamp64Milli({cursor_time:Int64}, 'UTC')`, { cursor_time: time });
    filter.add(
      `(time, tenant, bus_partition, seq) < (fromUnixTimestamp64Milli({cursor_time:Int64}, 'UTC'), {cursor_tenant:String}, {cursor_partition:Int32}, {cursor_seq:UInt64})`,
      { cursor_tenant: tenant, cursor_partition: partition, cursor_seq: seq },
    );
  }
  const rows = await select<AuditRow>(
    client,
    `SELECT ${AUDIT_COLUMNS} FROM ${db}.audit_log FINAL
     ${filter.where()}
     ORDER BY time DESC, tenant DESC, bus_partition DESC, seq DESC
     LIMIT {limit:UInt32}`,
    filter.params,
    'searching the audit log',
  );
  const items = rows.slice(0, limit).map(rowToAudit);
  const last = items[items.length - 1];
  const next_cursor =
    rows.length > limit && last !== undefined ? encodeCursor('audit', [last.time, last.tenant, last.bus_partition, last.seq]) : null;
  return { items, next_cursor };
}

// ---------------------------------------------------------------- agents

interface AgentRow {
  tenant: string;
  agent_id: string;
  latest_name: string;
  first_seen_ms: Int64Json;
  last_seen_ms: Int64Json;
  event_count: Int64Json;
  recent_count: Int64Json;
}

interface AlertCountRow {
  tenant: string;
  agent_id: string;
  open_count: Int64Json;
  acknowledged_count: Int64Json;
}

interface LatestSnapshotRow {
  tenant: string;
  agent_id: string;
  kind: string;
  latest_capabilities: string[];
  latest_fingerprint: string;
  latest_algorithm: string;
  latest_ms: Int64Json;
}

/**
 * Agents seen in the stored events, most recently active first (`last_seen`
 * DESC, then tenant and agent id DESC), one page at a time, each with its
 * event counts, open and acknowledged alerts, and latest capability set and key.
 *
 * Two round trips: the page is aggregated from `events` (FINAL, so replayed
 * events count once; filtered by tenant first, the leading sorting-key column),
 * then alerts and capability history are read for that page's agents only,
 * through their primary keys. An agent that becomes active between two page
 * requests moves to the front and is not shown again by later pages (as with
 * alerts ordered by `last_seen`).
 *
 * @throws StorageError `AW_STORAGE_INVALID_FILTER`, `AW_STORAGE_INVALID_CURSOR`, `AW_STORAGE_QUERY_FAILED` as {@link searchVerdicts}.
 */
export async function listAgents(client: ClickHouseClient, database: string, q: AgentSearch): Promise<Page<AgentSummary>> {
  const db = assertIdentifier(database);
  const limit = pageSize(q.limit);
  const now = checkTime(q.now, 'now');
  const filter = new Conditions({ limit: limit + 1, since: Math.max(0, now - DAY_MS) });
  filter.equal('tenant', q.tenant);
  filter.equal('agent_id', q.agent_id);
  // Conditions on the aggregates (the latest name, the cursor on last_seen);
  // they bind into the same parameter object as the WHERE conditions.
  const having = new Conditions(filter.params);
  if (q.q !== undefined) {
    // position*, not LIKE: the search text is a literal, so `%` and `_` need no escaping.
    having.add('(positionCaseInsensitiveUTF8(agent_id, {q:String}) > 0 OR positionCaseInsensitiveUTF8(latest_name, {q:String}) > 0)', { q: q.q });
  }
  if (q.cursor !== undefined && q.cursor !== null) {
    const [lastSeen, tenant, agentId] = decodeCursor(q.cursor, 'agents', ['uint', 'string', 'string']);
    having.add(
      `(max(time), tenant, agent_id) < (fromUnixTimestamp64Milli({cursor_time:Int64}, 'UTC'), {cursor_tenant:String}, {cursor_agent:String})`,
      { cursor_time: lastSeen, cursor_tenant: tenant, cursor_agent: agentId },
    );
  }
  const rows = await select<AgentRow>(
    client,
    `SELECT tenant, agent_id,
       argMaxIf(agent_name, (time, event_id), agent_name != '') AS latest_name,
       toUnixTimestamp64Milli(min(time)) AS first_seen_ms,
       toUnixTimestamp64Milli(max(time)) AS last_seen_ms,
       count() AS event_count,
       countIf(time >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')) AS recent_count
     FROM ${db}.events FINAL
     ${filter.where()}
     GROUP BY tenant, agent_id
     ${having.conditions.length === 0 ? '' : `HAVING ${having.conditions.join(' AND ')}`}
     ORDER BY max(time) DESC, tenant DESC, agent_id DESC
     LIMIT {limit:UInt32}`,
    filter.params,
    'listing agents',
  );
  const page = rows.slice(0, limit);
  const items = await summarise(client, db, page);
  const last = items[items.length - 1];
  const next_cursor = rows.length > limit && last !== undefined ? encodeCursor('agents', [last.last_seen, last.tenant, last.agent_id]) : null;
  return { items, next_cursor };
}

/** One agent's summary, or null when it has no stored event in `tenant`. */
export async function getAgent(client: ClickHouseClient, database: string, tenant: string, agentId: string, now: number): Promise<AgentSummary | null> {
  const page = await listAgents(client, database, { tenant, agent_id: agentId, limit: 1, now });
  return page.items[0] ?? null;
}

/** Adds alert counts and the latest capability set and key to a page of agents. */
async function summarise(client: ClickHouseClient, db: string, agents: readonly AgentRow[]): Promise<AgentSummary[]> {
  if (agents.length === 0) return [];
  // `tenant IN` and `agent_id IN` let the primary index prune (both tables are
  // sorted by tenant, then alert or agent); the pair test is the exact filter.
  const params = {
    tenants: [...new Set(agents.map((a) => a.tenant))],
    agent_ids: [...new Set(agents.map((a) => a.agent_id))],
    pair_tenants: agents.map((a) => a.tenant),
    pair_agent_ids: agents.map((a) => a.agent_id),
  };
  // The pairs travel as two parallel arrays zipped server-side: plain string
  // arrays bind the same way on a server and on the embedded engine.
  const pageFilter = `tenant IN {tenants:Array(String)} AND agent_id IN {agent_ids:Array(String)}
     AND (tenant, agent_id) IN arrayZip({pair_tenants:Array(String)}, {pair_agent_ids:Array(String)})`;
  const [alertCounts, snapshots] = await Promise.all([
    select<AlertCountRow>(
      client,
      // FINAL: only each alert's newest version counts (the status changes).
      `SELECT tenant, agent_id, countIf(status = 'open') AS open_count, countIf(status = 'acknowledged') AS acknowledged_count
       FROM ${db}.alerts FINAL
       WHERE ${pageFilter}
       GROUP BY tenant, agent_id`,
      params,
      'counting alerts per agent',
    ),
    select<LatestSnapshotRow>(
      client,
      // Ties on time go to the higher event id, so the answer does not depend on part order.
      `SELECT tenant, agent_id, kind,
         argMax(capabilities, (time, event_id)) AS latest_capabilities,
         argMax(key_fingerprint, (time, event_id)) AS latest_fingerprint,
         argMax(key_algorithm, (time, event_id)) AS latest_algorithm,
         toUnixTimestamp64Milli(max(time)) AS latest_ms
       FROM ${db}.capability_history FINAL
       WHERE ${pageFilter}
       GROUP BY tenant, agent_id, kind`,
      params,
      'reading latest capabilities per agent',
    ),
  ]);
  const alertsByAgent = new Map(alertCounts.map((row) => [agentKey(row), row]));
  const capabilitiesByAgent = new Map<string, LatestSnapshotRow>();
  const keysByAgent = new Map<string, LatestSnapshotRow>();
  for (const row of snapshots) (row.kind === 'key' ? keysByAgent : capabilitiesByAgent).set(agentKey(row), row);
  return agents.map((agent) => {
    const id = agentKey(agent);
    const alerts = alertsByAgent.get(id);
    const capabilities = capabilitiesByAgent.get(id);
    const key = keysByAgent.get(id);
    return {
      tenant: agent.tenant,
      agent_id: agent.agent_id,
      agent_name: agent.latest_name,
      first_seen: toInteger(agent.first_seen_ms, 'events.time'),
      last_seen: toInteger(agent.last_seen_ms, 'events.time'),
      events: toInteger(agent.event_count, 'events count'),
      events_24h: toInteger(agent.recent_count, 'events count'),
      open_alerts: alerts === undefined ? 0 : toInteger(alerts.open_count, 'alerts count'),
      acknowledged_alerts: alerts === undefined ? 0 : toInteger(alerts.acknowledged_count, 'alerts count'),
      capabilities: capabilities === undefined ? null : capabilities.latest_capabilities,
      capabilities_at: capabilities === undefined ? null : toInteger(capabilities.latest_ms, 'capability_history.time'),
      key_fingerprint: key === undefined ? null : key.latest_fingerprint,
      key_algorithm: key === undefined || key.latest_algorithm === '' ? null : key.latest_algorithm,
      key_at: key === undefined ? null : toInteger(key.latest_ms, 'capability_history.time'),
    };
  });
}

/** Map key of an agent; the unit separator cannot be confused with text in either part. */
function agentKey(row: { tenant: string; agent_id: string }): string {
  return `${row.tenant}\u001f${row.agent_id}`;
}

// ---------------------------------------------------------------- query building

/** WHERE (or HAVING) conditions with the parameters they bind. */
class Conditions {
  readonly conditions: string[] = [];

  constructor(readonly params: Record<string, unknown>) {}

  add(condition: string, params: Record<string, unknown>): void {
    this.conditions.push(condition);
    Object.assign(this.params, params);
  }

  /** `column = {column:String}` when a value is given ('' included: it is a value, not "any"). */
  equal(column: string, value: string | undefined): void {
    if (value !== undefined) this.add(`${column} = {${column}:String}`, { [column]: value });
  }

  /** Event time in `[from, to)`. */
  timeRange(from: number | undefined, to: number | undefined): void {
    if (from !== undefined) this.add(`time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')`, { from: checkTime(from, 'from') });
    if (to !== undefined) this.add(`time < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`, { to: checkTime(to, 'to') });
    if (from !== undefined && to !== undefined && from > to) {
      throw new StorageError('AW_STORAGE_INVALID_FILTER', `from must not be after to (got from=${from}, to=${to})`);
    }
  }

  where(): string {
    return this.conditions.length === 0 ? '' : `WHERE ${this.conditions.join(' AND ')}`;
  }
}

async function select<R>(client: ClickHouseClient, query: string, params: Record<string, unknown>, what: string): Promise<R[]> {
  try {
    const result = await client.query({ query, query_params: params, format: 'JSONEachRow' });
    return await result.json<R>();
  } catch (cause) {
    throw toStorageError('AW_STORAGE_QUERY_FAILED', what, cause);
  }
}

function pageSize(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new StorageError('AW_STORAGE_INVALID_FILTER', `limit must be a positive integer (got ${limit})`);
  }
  return Math.min(limit, MAX_SEARCH_LIMIT);
}

/** Same bounds as event times (core/event.ts), which DateTime64(3) holds exactly. */
function checkTime(ms: number, key: string): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > 253_402_300_799_999) {
    throw new StorageError('AW_STORAGE_INVALID_FILTER', `${key} must be epoch milliseconds between 0 and 253402300799999 (got ${ms})`);
  }
  return ms;
}

// ---------------------------------------------------------------- cursors

const CURSOR_VERSION = 1;
/** Longer than any cursor we produce (ids are bounded by the event schema); refuses junk before decoding. */
const MAX_CURSOR_LENGTH = 4096;

type CursorKind = 'verdicts' | 'audit' | 'agents';
/** `uint`: a non-negative safe integer (a time in ms, an audit seq); `int`: any safe integer; `string`: any string. */
type CursorField = 'uint' | 'int' | 'string';
type CursorValue<F extends CursorField> = F extends 'string' ? string : number;

/**
 * Opaque cursor: base64url of `[version, kind, ...sort key of the last row]`.
 * The kind keeps one search's cursor from being read by another; the version
 * lets the encoding change without misreading old cursors. A cursor is a
 * position, not a credential: the tenant filter applies regardless of it.
 */
function encodeCursor(kind: CursorKind, key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, kind, ...key]), 'utf8').toString('base64url');
}

/** Inverse of {@link encodeCursor}; throws `AW_STORAGE_INVALID_CURSOR` for anything it did not produce. */
function decodeCursor<const F extends readonly CursorField[]>(cursor: string, kind: CursorKind, fields: F): { [I in keyof F]: CursorValue<F[I]> } {
  let parsed: unknown;
  try {
    parsed = cursor.length <= MAX_CURSOR_LENGTH && /^[A-Za-z0-9_-]+$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  if (Array.isArray(parsed) && parsed.length === fields.length + 2 && parsed[0] === CURSOR_VERSION && parsed[1] === kind) {
    const key: unknown[] = parsed.slice(2);
    if (fields.every((field, i) => fitsCursorField(field, key[i]))) return key as { [I in keyof F]: CursorValue<F[I]> };
  }
  throw new StorageError('AW_STORAGE_INVALID_CURSOR', `cursor is not one returned by the ${kind} search`);
}

function fitsCursorField(field: CursorField, value: unknown): boolean {
  switch (field) {
    case 'string':
      return typeof value === 'string';
    case 'int':
      return Number.isSafeInteger(value);
    case 'uint':
      return Number.isSafeInteger(value) && (value as number) >= 0;
  }
}

// ---------------------------------------------------------------- rows out



