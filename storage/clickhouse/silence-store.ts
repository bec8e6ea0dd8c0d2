import { Severities, type Severity } from '../../core/decision.js';
import type { SilenceFilter, SilenceStore } from '../../core/ports.js';
import type { Silence, SilenceMatchers } from '../../core/records.js';
import { StorageError } from '../errors.js';
import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';

/** Largest list `listSilences` returns, and its default. */
export const MAX_SILENCE_LIMIT = 10_000;
const DEFAULT_SILENCE_LIMIT = 1000;

// Times leave as epoch-ms integers under aliases unlike their columns (an alias
// named like its column would shadow it in WHERE).
const SILENCE_COLUMNS = `silence_id, tenant, match_policy_id, match_policy_type, match_agent_id, match_severity,
  toUnixTimestamp64Milli(starts_at) AS starts_at_ms, toUnixTimestamp64Milli(ends_at) AS ends_at_ms, comment, created_by,
  toUnixTimestamp64Milli(created_at) AS created_at_ms, toUnixTimestamp64Milli(expired_at) AS expired_at_ms, expired_by,
  toUnixTimestamp64Milli(updated_at) AS updated_at_ms`;

const INSERT_COLUMNS = [
  'silence_id', 'tenant', 'match_policy_id', 'match_policy_type', 'match_agent_id', 'match_severity',
  'starts_at', 'ends_at', 'comment', 'created_by', 'created_at', 'expired_at', 'expired_by', 'updated_at',
] as const satisfies readonly [string, ...string[]];

/** 64-bit integers arrive as JSON strings from a server (output_format_json_quote_64bit_integers=1), numbers from chdb. */
type Int64Json = number | string;

interface SilenceRow {
  silence_id: string;
  tenant: string | null;
  match_policy_id: string;
  match_policy_type: string;
  match_agent_id: string;
  match_severity: string[];
  starts_at_ms: Int64Json;
  ends_at_ms: Int64Json;
  comment: string;
  created_by: string;
  created_at_ms: Int64Json;
  expired_at_ms: Int64Json | null;
  expired_by: string;
  updated_at_ms: Int64Json;
}

/**
 * {@link SilenceStore} on ClickHouse (`silences`, migration 0005). Every
 * value travels as a `{name:Type}` query parameter; the validated database
 * name is the only text spliced into SQL. Reads use FINAL, which applies
 * before WHERE: a silence whose newest version is expired is judged on that
 * version, never on an older unmerged one.
 */
export class ClickHouseSilenceStore implements SilenceStore {
  readonly #client: ClickHouseClient;
  readonly #db: string;

  /** @throws StorageError `AW_STORAGE_INVALID_CONFIG` when `database` is not a plain identifier. */
  constructor(client: ClickHouseClient, database: string) {
    this.#client = client;
    this.#db = assertIdentifier(database);
  }

  async upsertSilences(silences: readonly Silence[]): Promise<void> {
    if (silences.length === 0) return;
    try {
      await this.#client.insert({
        table: `${this.#db}.silences`,
        values: silences.map(silenceValues),
        format: 'JSONCompactEachRow',
        columns: [...INSERT_COLUMNS],
      });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_INSERT_FAILED', `inserting ${silences.length} silence(s)`, cause);
    }
  }

  /**
   * Silences matching every given filter, newest first (`created_at` DESC,
   * then `silence_id` DESC).
   *
   * @throws StorageError `AW_STORAGE_INVALID_FILTER` for a bad limit or time.
   */
  async listSilences(filter: SilenceFilter): Promise<Silence[]> {
    const limit = filter.limit ?? DEFAULT_SILENCE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SILENCE_LIMIT) {
      throw new StorageError('AW_STORAGE_INVALID_FILTER', `limit must be an integer from 1 to ${MAX_SILENCE_LIMIT} (got ${limit})`);
    }
    const where: string[] = [];
    const params: Record<string, unknown> = { limit };
    if (filter.tenant === null) {
      where.push('tenant IS NULL');
    } else if (filter.tenant !== undefined) {
      // All-tenant silences match this tenant's alerts too.
      where.push('(tenant = {tenant:String} OR tenant IS NULL)');
      params.tenant = filter.tenant;
    }
    if (filter.active_at !== undefined) {
      where.push(`starts_at <= fromUnixTimestamp64Milli({active_at:Int64}, 'UTC')`);
      where.push(notOver('active_at'));
      params.active_at = checkTime(filter.active_at, 'active_at');
    }
    if (filter.unexpired_at !== undefined) {
      where.push(notOver('unexpired_at'));
      params.unexpired_at = checkTime(filter.unexpired_at, 'unexpired_at');
    }
    const rows = await this.#select(
      `SELECT ${SILENCE_COLUMNS} FROM ${this.#db}.silences FINAL
       ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
       ORDER BY created_at DESC, silence_id DESC
       LIMIT {limit:UInt32}`,
      params,
      'listing silences',
    );
    return rows.map(rowToSilence);
  }

  async getSilence(silenceId: string): Promise<Silence | null> {
    const rows = await this.#select(
      `SELECT ${SILENCE_COLUMNS} FROM ${this.#db}.silences FINAL WHERE silence_id = {silence_id:String} LIMIT 1`,
      { silence_id: silenceId },
      'reading a silence',
    );
    const row = rows[0];
    return row === undefined ? null : rowToSilence(row);
  }

  async #select(query: string, params: Record<string, unknown>, what: string): Promise<SilenceRow[]> {
    try {
      const result = await this.#client.query({ query, query_params: params, format: 'JSONEachRow' });
      return await result.json<SilenceRow>();
    } catch (cause) {
      throw toStorageError('AW_STORAGE_QUERY_FAILED', what, cause);
    }
  }
}

/** Not ended and not expired at the time in parameter `param` (same rule as `isSilenceOver` of alerting/silences.ts). */
function notOver(param: string): string {
  const at = `fromUnixTimestamp64Milli({${param}:Int64}, 'UTC')`;
  return `ends_at > ${at} AND (expired_at IS NULL OR expired_at > ${at})`;
}

/** A silence as a `silences` row, values in {@link INSERT_COLUMNS} order; times as epoch ms (DateTime64(3) ticks). */
function silenceValues(s: Silence): unknown[] {
  const m = s.matchers;
  return [
    s.silence_id, s.tenant, m.policy_id ?? '', m.policy_type ?? '', m.agent_id ?? '', m.severity ?? [],
    s.starts_at, s.ends_at, s.comment, s.created_by, s.created_at, s.expired_at, s.expired_by, s.updated_at,
  ];
}

function rowToSilence(row: SilenceRow): Silence {
  const matchers: SilenceMatchers = {};
  if (row.match_policy_id !== '') matchers.policy_id = row.match_policy_id;
  if (row.match_policy_type !== '') matchers.policy_type = row.match_policy_type;
  if (row.match_agent_id !== '') matchers.agent_id = row.match_agent_id;
  if (row.match_severity.length > 0) matchers.severity = row.match_severity.map(toSeverity);
  return {
    silence_id: row.silence_id,
    tenant: row.tenant,
    matchers,
    starts_at: toInteger(row.starts_at_ms, 'silences.starts_at'),
    ends_at: toInteger(row.ends_at_ms, 'silences.ends_at'),
    comment: row.comment,
    created_by: row.created_by,
    created_at: toInteger(row.created_at_ms, 'silences.created_at'),
    expired_at: row.expired_at_ms === null ? null : toInteger(row.expired_at_ms, 'silences.expired_at'),
    expired_by: row.expired_by,
    updated_at: toInteger(row.updated_at_ms, 'silences.updated_at'),
  };
}

function toSeverity(value: string): Severity {
  if (!(Severities as readonly string[]).includes(value)) throw badRow('silences.match_severity', value);
  return value as Severity;
}

function toInteger(value: Int64Json, column: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw badRow(column, value);
  return n;
}

function badRow(column: string, value: unknown): StorageError {
  return new StorageError('AW_STORAGE_BAD_ROW', `unexpected value in ${column}: ${JSON.stringify(value)?.slice(0, 200)}`);
}

/** Same bounds as event times (core/event.ts), which DateTime64(3) holds exactly. */
function checkTime(ms: number, key: string): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > 253_402_300_799_999) {
    throw new StorageError('AW_STORAGE_INVALID_FILTER', `${key} must be epoch milliseconds between 0 and 253402300799999 (got ${ms})`);
  }
  return ms;
}
