import type { AgentEvent } from '../../core/event.js';
import type { AlertFilter, AnalyticsStore, VerdictFilter } from '../../core/ports.js';
import type { Alert, AuditRecord, DeadLetter, Page, Verdict } from '../../core/records.js';
import { StorageError } from '../errors.js';
import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';
import { applyMigrations, type MigrationReport } from './migrations.js';
import { assertEventPrivacy, DEFAULT_PRIVACY, storedContent, type StoragePrivacy } from './retention.js';
import { ALERT_COLUMNS, oneOf, rowToAlert, rowToVerdict, toInteger, VERDICT_COLUMNS, type AlertRow, type Int64Json, type VerdictRow } from './rows.js';

/** Options of {@link ClickHouseAnalyticsStore}. */
export interface ClickHouseAnalyticsStoreOptions {
  /**
   * Folder of the SQL migrations `migrate()` applies.
   * @default `<package root>/infra/clickhouse`
   */
  migrationsDir?: string;
  /**
   * Whether `close()` closes the client. Turn off when the client is shared
   * (tests share one embedded engine per process).
   * @default true
   */
  closeClient?: boolean;
  /**
   * What of an event's `content` `insertEvents` stores (columns
   * `content_input`, `content_output`; see `PrivacyConfigSchema` in
   * retention.ts). With `store_raw_payloads` and `redact_outputs` both on,
   * `redactText` is required.
   * @default { store_raw_payloads: false, redact_outputs: true } (content not stored)
   */
  privacy?: StoragePrivacy;
}

/** Largest page `listAlerts` and `listVerdicts` return; a guard against unbounded reads, not a UX limit. */
export const MAX_LIST_LIMIT = 10_000;





/**
 * {@link AnalyticsStore} on ClickHouse (server or embedded chdb). Every value
 * from callers travels as a `{name:Type}` query parameter; the validated
 * database name is the only text spliced into SQL. Reads of replacing tables
 * use FINAL so replayed and superseded rows never show.
 */
export class ClickHouseAnalyticsStore implements AnalyticsStore {
  readonly #client: ClickHouseClient;
  readonly #db: string;
  readonly #options: ClickHouseAnalyticsStoreOptions;
  readonly #privacy: StoragePrivacy;

  /**
   * @throws StorageError `AW_STORAGE_INVALID_CONFIG` when `database` is not a plain identifier,
   *   or `privacy` asks for redacted payloads without a `redactText`.
   */
  constructor(client: ClickHouseClient, database: string, options: ClickHouseAnalyticsStoreOptions = {}) {
    this.#client = client;
    this.#db = assertIdentifier(database);
    this.#options = { ...options };
    this.#privacy = Object.freeze({ ...(options.privacy ?? DEFAULT_PRIVACY) });
    assertEventPrivacy(this.#privacy);
  }

  /** Applies pending migrations; see {@link applyMigrations}. */
  async migrate(): Promise<void> {
    await this.applyMigrations();
  }

  /** Like {@link migrate}, reporting which versions were applied. */
  applyMigrations(): Promise<MigrationReport> {
    return applyMigrations(this.#client, this.#db, this.#options.migrationsDir === undefined ? {} : { dir: this.#options.migrationsDir });
  }

  insertEvents(events: readonly AgentEvent[]): Promise<void> {
    const privacy = this.#privacy;
    return this.#insertCompact('events', eventColumns(privacy), events.map((event) => eventValues(event, privacy)));
  }

  insertVerdicts(verdicts: readonly Verdict[]): Promise<void> {
    return this.#insertCompact('verdicts', VERDICT_INSERT_COLUMNS, verdicts.map(verdictValues));
  }

  insertAudit(rows: readonly AuditRecord[]): Promise<void> {
    return this.#insertCompact('audit_log', AUDIT_COLUMNS, rows.map(auditValues));
  }

  upsertAlerts(alerts: readonly Alert[]): Promise<void> {
    return this.#insert('alerts', alerts.map(alertToRow));
  }

  insertDeadLetters(rows: readonly DeadLetter[]): Promise<void> {
    return this.#insert('dead_letters', rows.map(deadLetterToRow));
  }

  /**
   * Alerts matching every given filter, newest activity first (`last_seen`
   * DESC, then `alert_id` DESC), one page at a time. `from`/`to` select alerts
   * whose activity span `[first_seen, last_seen]` overlaps `[from, to)`;
   * `silenced` tests `silenced_by` (muted by a silence at the latest verdict
   * change, or not); `alert_ids` keeps only the alerts named.
   * Keyset pagination: `next_cursor` encodes the last row's sort key, so pages
   * do not shift when new alerts arrive.
   *
   * @throws StorageError `AW_STORAGE_INVALID_FILTER` for a bad limit, `AW_STORAGE_INVALID_CURSOR` for a bad cursor.
   */
  async listAlerts(filter: AlertFilter): Promise<Page<Alert>> {
    const limit = checkLimit(filter.limit);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: limit + 1 };
    const equal = (column: keyof AlertFilter & keyof Alert, value: string | undefined): void => {
      if (value === undefined) return;
      where.push(`${column} = {${column}:String}`);
      params[column] = value;
    };
    equal('tenant', filter.tenant);
    equal('status', filter.status);
    equal('policy_id', filter.policy_id);
    equal('policy_type', filter.policy_type);
    equal('agent_id', filter.agent_id);
    equal('severity', filter.severity);
    if (filter.silenced !== undefined) where.push(filter.silenced ? `silenced_by != ''` : `silenced_by = ''`);
    if (filter.alert_ids !== undefined) {
      where.push('alert_id IN {alert_ids:Array(String)}');
      params.alert_ids = [...filter.alert_ids];
    }
    if (filter.from !== undefined) {
      where.push(`last_seen >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')`);
      params.from = checkTime(filter.from, 'from');
    }
    if (filter.to !== undefined) {
      where.push(`first_seen < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`);
      params.to = checkTime(filter.to, 'to');
    }
    if (filter.cursor !== undefined && filter.cursor !== null) {
      const after = decodeAlertCursor(filter.cursor);
      where.push(`(last_seen, alert_id) < (fromUnixTimestamp64Milli({cursor_last_seen:Int64}, 'UTC'), {cursor_alert_id:String})`);
      params.cursor_last_seen = after.last_seen;
      params.cursor_alert_id = after.alert_id;
    }
    const rows = await this.#select<AlertRow>(
      `SELECT ${ALERT_COLUMNS} FROM ${this.#db}.alerts FINAL
       ${whereClause(where)}
       ORDER BY last_seen DESC, alert_id DESC
       LIMIT {limit:UInt32}`,
      params,
      'listing alerts',
    );
    const items = rows.slice(0, limit).map(rowToAlert);
    const last = items[items.length - 1];
    const next_cursor = rows.length > limit && last !== undefined ? encodeAlertCursor(last) : null;
    return { items, next_cursor };
  }

  /** The current version of one alert; `tenant`, when given, must match too. */
  async getAlert(alertId: string, tenant?: string): Promise<Alert | null> {
    const where = ['alert_id = {alert_id:String}'];
    const params: Record<string, unknown> = { alert_id: alertId };
    if (tenant !== undefined) {
      where.push('tenant = {tenant:String}');
      params.tenant = tenant;
    }
    const rows = await this.#select<AlertRow>(
      `SELECT ${ALERT_COLUMNS} FROM ${this.#db}.alerts FINAL ${whereClause(where)} ORDER BY updated_at DESC LIMIT 1`,
      params,
      'reading an alert',
    );
    const row = rows[0];
    return row === undefined ? null : rowToAlert(row);
  }

  /** Open and acknowledged alerts of every tenant, ordered by tenant and id. */
  async loadActiveAlerts(): Promise<Alert[]> {
    // FINAL applies before WHERE, so an alert whose newest version is resolved
    // is excluded even though older open versions may still sit unmerged.
    const rows = await this.#select<AlertRow>(
      `SELECT ${ALERT_COLUMNS} FROM ${this.#db}.alerts FINAL WHERE status != 'resolved' ORDER BY tenant, alert_id`,
      {},
      'loading active alerts',
    );
    return rows.map(rowToAlert);
  }

  /** Verdicts matching every given filter, newest first; `from`/`to` bound event time as `[from, to)`. */
  async listVerdicts(filter: VerdictFilter): Promise<Verdict[]> {
    const limit = checkLimit(filter.limit);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit };
    const equal = (column: keyof VerdictFilter & keyof Verdict, value: string | undefined): void => {
      if (value === undefined) return;
      where.push(`${column} = {${column}:String}`);
      params[column] = value;
    };
    equal('tenant', filter.tenant);
    equal('agent_id', filter.agent_id);
    equal('policy_id', filter.policy_id);
    equal('decision', filter.decision);
    if (filter.from !== undefined) {
      where.push(`time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')`);
      params.from = checkTime(filter.from, 'from');
    }
    if (filter.to !== undefined) {
      where.push(`time < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`);
      params.to = checkTime(filter.to, 'to');
    }
    const rows = await this.#select<VerdictRow>(
      `SELECT ${VERDICT_COLUMNS} FROM ${this.#db}.verdicts FINAL
       ${whereClause(where)}
       ORDER BY time DESC, verdict_id DESC
       LIMIT {limit:UInt32}`,
      params,
      'listing verdicts',
    );
    return rows.map(rowToVerdict);
  }

  /** Highest-`seq` audit row below `beforeSeq` per tenant on one bus partition, as `{ seq, hash }`. */
  async auditChainHeads(partition: number, beforeSeq: number, tenants: readonly string[]): Promise<Map<string, { seq: number; hash: string }>> {
    if (tenants.length === 0) return new Map();
    const rows = await this.#select<{ tenant: string; seq: Int64Json; hash: string }>(
      `SELECT tenant, seq, hash FROM ${this.#db}.audit_log FINAL
       WHERE bus_partition = {partition:Int32} AND seq < {before:Int64} AND tenant IN {tenants:Array(String)}
       ORDER BY tenant, seq DESC LIMIT 1 BY tenant`,
      { partition, before: beforeSeq, tenants: [...tenants] },
      'reading audit chain heads',
    );
    return new Map(rows.map((row) => [row.tenant, { seq: toInteger(row.seq, 'audit_log.seq'), hash: row.hash }]));
  }

  async close(): Promise<void> {
    if (this.#options.closeClient ?? true) await this.#client.close();
  }

  async #insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      // Compact rows (arrays in a named column order) encode and parse ~40% faster than
      // objects: no key names repeated per row. Every row builder emits the same keys.
      const columns = Object.keys(rows[0] as Record<string, unknown>) as [string, ...string[]];
      const values = rows.map((row) => columns.map((column) => row[column]));
      await this.#client.insert({ table: `${this.#db}.${table}`, values, format: 'JSONCompactEachRow', columns });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_INSERT_FAILED', `inserting ${rows.length} row(s) into ${table}`, cause);
    }
  }

  /** The hot tables: rows built directly as arrays in `columns` order (no intermediate objects). */
  async #insertCompact(table: string, columns: readonly [string, ...string[]], values: readonly unknown[][]): Promise<void> {
    if (values.length === 0) return;
    try {
      await this.#client.insert({ table: `${this.#db}.${table}`, values: values as unknown[][], format: 'JSONCompactEachRow', columns: [...columns] as [string, ...string[]] });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_INSERT_FAILED', `inserting ${values.length} row(s) into ${table}`, cause);
    }
  }

  async #select<R>(query: string, params: Record<string, unknown>, what: string): Promise<R[]> {
    try {
      const result = await this.#client.query({ query, query_params: params, format: 'JSONEachRow' });
      return await result.json<R>();
    } catch (cause) {
      throw toStorageError('AW_STORAGE_QUERY_FAILED', what, cause);
    }
  }

  /**
   * One agent's snapshots from `capability_history` (capability sets and
   * keys it presented), newest first: event time DESC, then event id DESC.
   * `from`/`to` bound event time as `[from, to)`. Compare two with
   * `diffSnapshots` (storage/capability-diff.ts).
   *
   * (Parameter and result types are spelled through `AnalyticsStore`:
   * `CapabilityHistoryFilter` and `CapabilitySnapshot` of core/ports.ts.)
   *
   * @throws StorageError `AW_STORAGE_INVALID_FILTER` for a bad limit or time bound.
   */
  async capabilityHistory(filter: Parameters<AnalyticsStore['capabilityHistory']>[0]): ReturnType<AnalyticsStore['capabilityHistory']> {
    const limit = checkLimit(filter.limit);
    const where = ['tenant = {tenant:String}', 'agent_id = {agent_id:String}'];
    const params: Record<string, unknown> = { tenant: filter.tenant, agent_id: filter.agent_id, limit };
    if (filter.kind !== undefined) {
      where.push('kind = {kind:String}');
      params.kind = filter.kind;
    }
    if (filter.from !== undefined) {
      where.push(`time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')`);
      params.from = checkTime(filter.from, 'from');
    }
    if (filter.to !== undefined) {
      where.push(`time < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`);
      params.to = checkTime(filter.to, 'to');
    }
    const rows = await this.#select<{
      tenant: string;
      agent_id: string;
      agent_name: string;
      time_ms: Int64Json;
      event_id: string;
      kind: string;
      capabilities: string[];
      key_fingerprint: string;
      key_algorithm: string;
      ingested_at_ms: Int64Json;
    }>(
      `SELECT tenant, agent_id, agent_name, toUnixTimestamp64Milli(time) AS time_ms, event_id, kind, capabilities,
         key_fingerprint, key_algorithm, toUnixTimestamp64Milli(ingested_at) AS ingested_at_ms
       FROM ${this.#db}.capability_history FINAL
       ${whereClause(where)}
       ORDER BY time DESC, event_id DESC
       LIMIT {limit:UInt32}`,
      params,
      'reading capability history',
    );
    return rows.map((row) => ({
      tenant: row.tenant,
      agent_id: row.agent_id,
      agent_name: row.agent_name,
      time: toInteger(row.time_ms, 'capability_history.time'),
      event_id: row.event_id,
      kind: oneOf(['capabilities', 'key'] as const, row.kind, 'capability_history.kind'),
      capabilities: row.capabilities,
      key_fingerprint: row.key_fingerprint,
      key_algorithm: row.key_algorithm,
      ingested_at: toInteger(row.ingested_at_ms, 'capability_history.ingested_at'),
    }));
  }
}

// ---------------------------------------------------------------- rows in

/** Columns of an `events` row, in the order of {@link eventValues}, without the content columns. */
const EVENT_COLUMNS = [
  'event_id', 'time', 'tenant', 'agent_id', 'agent_name', 'agent_type', 'agent_version', 'type', 'action', 'resource',
  'source_ip', 'source_host', 'source_user', 'tool_name', 'tool_server', 'tool_version', 'mcp_server_id', 'mcp_url',
  'mcp_trust_score', 'mcp_tools', 'mcp_capabilities', 'capabilities', 'key_fingerprint', 'key_algorithm',
  'network_domain', 'network_url', 'network_method', 'network_ip', 'network_port', 'outcome', 'duration_ms', 'attributes',
] as const satisfies readonly [string, ...string[]];

/** {@link EVENT_COLUMNS} and the content columns of migration 0007. */
const EVENT_COLUMNS_WITH_CONTENT = [...EVENT_COLUMNS, 'content_input', 'content_output'] as const;

/**
 * The columns `insertEvents` writes. The content columns are named only when
 * payloads are stored: otherwise their DEFAULT '' fills them, rows carry two
 * fewer values, and the insert works on a schema from before 0007 too.
 */
function eventColumns(privacy: StoragePrivacy): readonly [string, ...string[]] {
  return privacy.store_raw_payloads ? EVENT_COLUMNS_WITH_CONTENT : EVENT_COLUMNS;
}

const NO_STRINGS: readonly string[] = [];
const NO_ATTRIBUTES: Readonly<Record<string, string>> = {};

/**
 * Flattens an event into an `events` row (values in {@link eventColumns} order).
 * `content` is stored only as `privacy` says (not at all unless
 * `store_raw_payloads`, redacted when `redact_outputs`: `storedContent`); absent optional
 * text becomes '' so the columns need no Nullable; attribute values become
 * strings for the Map column.
 */
function eventValues(event: AgentEvent, privacy: StoragePrivacy): unknown[] {
  const { agent, source, tool, mcp, key, network } = event;
  let attributes = NO_ATTRIBUTES;
  if (event.attributes !== undefined) {
    const out: Record<string, string> = {};
    for (const name in event.attributes) out[name] = String(event.attributes[name]);
    attributes = out;
  }
  const values: unknown[] = [
    event.event_id,
    event.time,
    event.tenant,
    agent.id,
    agent.name ?? '',
    agent.type ?? '',
    agent.version ?? '',
    event.type,
    event.action ?? '',
    event.resource ?? '',
    source?.ip ?? '',
    source?.host ?? '',
    source?.user ?? '',
    tool?.name ?? '',
    tool?.server ?? '',
    tool?.version ?? '',
    mcp?.server_id ?? '',
    mcp?.url ?? '',
    mcp?.trust_score ?? null,
    mcp?.tools ?? NO_STRINGS,
    mcp?.capabilities ?? NO_STRINGS,
    event.capabilities ?? NO_STRINGS,
    key?.fingerprint ?? '',
    key?.algorithm ?? '',
    network?.domain ?? '',
    network?.url ?? '',
    network?.method ?? '',
    network?.ip ?? '',
    network?.port ?? null,
    event.outcome ?? '',
    event.duration_ms ?? null,
    attributes,
  ];
  if (privacy.store_raw_payloads) values.push(...storedContent(event, privacy));
  return values;
}

/**
 * An `events` row as an object (column → value), as stored under `privacy`
 * (the store's option), content columns included; for tests and tools.
 */
export function eventToRow(event: AgentEvent, privacy: StoragePrivacy = DEFAULT_PRIVACY): Record<string, unknown> {
  const values = eventValues(event, privacy);
  const row = Object.fromEntries(eventColumns(privacy).map((column, i) => [column, values[i]]));
  return { ...row, content_input: row.content_input ?? '', content_output: row.content_output ?? '' };
}

// Records are copied field by field rather than spread: a caller's object may
// carry extra runtime properties, which a strict server would refuse as
// unknown columns. Times go in as epoch-ms integers (DateTime64(3) ticks).

const VERDICT_INSERT_COLUMNS = [
  'verdict_id', 'event_id', 'time', 'tenant', 'agent_id', 'agent_name', 'event_type', 'policy_id', 'policy_type',
  'severity', 'action', 'decision', 'would_decide', 'mode', 'reason', 'evidence', 'atlas', 'late', 'exception',
] as const satisfies readonly [string, ...string[]];

function verdictValues(v: Verdict): unknown[] {
  return [
    v.verdict_id, v.event_id, v.time, v.tenant, v.agent_id, v.agent_name, v.event_type, v.policy_id, v.policy_type,
    // `?? ''`: a verdict produced before the field existed (replayed from the bus) has none.
    v.severity, v.action, v.decision, v.would_decide, v.mode, v.reason, JSON.stringify(v.evidence), v.atlas, v.late, v.exception ?? '',
  ];
}

const AUDIT_COLUMNS = [
  'event_id', 'time', 'tenant', 'bus_partition', 'agent_id', 'event_type', 'decision', 'would_decide', 'mode',
  'matched_policies', 'verdict_ids', 'policy_version', 'evaluated_at', 'seq', 'prev_hash', 'hash',
] as const satisfies readonly [string, ...string[]];

function auditValues(a: AuditRecord): unknown[] {
  return [
    a.event_id, a.time, a.tenant, a.bus_partition, a.agent_id, a.event_type, a.decision, a.would_decide, a.mode,
    a.matched_policies, a.verdict_ids, a.policy_version, a.evaluated_at, a.seq, a.prev_hash, a.hash,
  ];
}

function alertToRow(a: Alert): Record<string, unknown> {
  return {
    alert_id: a.alert_id,
    tenant: a.tenant,
    policy_id: a.policy_id,
    policy_type: a.policy_type,
    agent_id: a.agent_id,
    severity: a.severity,
    status: a.status,
    count: a.count,
    first_seen: a.first_seen,
    last_seen: a.last_seen,
    title: a.title,
    reason: a.reason,
    verdict_ids: a.verdict_ids,
    evidence: JSON.stringify(a.evidence),
    atlas: a.atlas,
    updated_at: a.updated_at,
    acknowledged_by: a.acknowledged_by,
    resolved_at: a.resolved_at,
    source_partition: a.source_partition,
    source_offset: a.source_offset,
    // `?? ''`: an alert built before the fields existed (an old fixture or tool) has none.
    silenced_by: a.silenced_by ?? '',
    comment: a.comment ?? '',
  };
}

function deadLetterToRow(d: DeadLetter): Record<string, unknown> {
  return { id: d.id, received_at: d.received_at, source: d.source, reason: d.reason, raw: d.raw, raw_bytes: d.raw_bytes };
}

// ---------------------------------------------------------------- rows out



// ---------------------------------------------------------------- filters and cursors

function whereClause(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new StorageError('AW_STORAGE_INVALID_FILTER', `limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${limit})`);
  }
  return limit;
}

/** Same bounds as event times (core/event.ts), which DateTime64(3) holds exactly. */
function checkTime(ms: number, key: string): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > 253_402_300_799_999) {
    throw new StorageError('AW_STORAGE_INVALID_FILTER', `${key} must be epoch milliseconds between 0 and 253402300799999 (got ${ms})`);
  }
  return ms;
}

const CURSOR_VERSION = 1;

/**
 * Opaque cursor after `alert`: base64url of `[version, last_seen, alert_id]`.
 * The version lets the encoding change without misreading old cursors.
 */
export function encodeAlertCursor(alert: Pick<Alert, 'last_seen' | 'alert_id'>): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, alert.last_seen, alert.alert_id]), 'utf8').toString('base64url');
}

/** Inverse of {@link encodeAlertCursor}; throws `AW_STORAGE_INVALID_CURSOR` for anything it did not produce. */
export function decodeAlertCursor(cursor: string): { last_seen: number; alert_id: string } {
  let parsed: unknown;
  try {
    parsed = /^[A-Za-z0-9_-]+$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  if (
    Array.isArray(parsed) &&
    parsed.length === 3 &&
    parsed[0] === CURSOR_VERSION &&
    Number.isSafeInteger(parsed[1]) &&
    (parsed[1] as number) >= 0 &&
    typeof parsed[2] === 'string'
  ) {
    return { last_seen: parsed[1] as number, alert_id: parsed[2] };
  }
  throw new StorageError('AW_STORAGE_INVALID_CURSOR', 'cursor is not one returned by listAlerts');
}
