import type { Alert, AuditRecord, Verdict } from '../../core/records.js';
import { isRetriableError } from '../../storage/errors.js';
import { assertIdentifier, type ClickHouseClient } from '../../storage/clickhouse/client.js';
import { ALERT_COLUMNS, AUDIT_COLUMNS, rowToAlert, rowToAudit, rowToVerdict, toInteger, VERDICT_COLUMNS, type AlertRow, type AuditRow, type Int64Json, type VerdictRow } from '../../storage/clickhouse/rows.js';
import { ExportError } from '../errors.js';
import type { EventRow, ExportSource, TimeRange } from '../source.js';

/**
 * {@link ExportSource} on the analytics tables (server or embedded chdb).
 * Values travel as `{name:Type}` parameters; the validated database name is
 * the only text spliced into SQL. Reads use FINAL (replayed and superseded
 * rows never show) and keyset pagination on the total order, so memory is
 * bounded by one page.
 */
export class ClickHouseExportSource implements ExportSource {
  readonly #client: ClickHouseClient;
  readonly #db: string;

  /** @throws StorageError `AW_STORAGE_INVALID_CONFIG` when `database` is not a plain identifier. */
  constructor(client: ClickHouseClient, database: string) {
    this.#client = client;
    this.#db = assertIdentifier(database);
  }

  async tenantsWithRows(range: TimeRange, includeEvents: boolean): Promise<string[]> {
    const p = rangeParams(range);
    const parts = [
      `SELECT DISTINCT tenant FROM ${this.#db}.audit_log WHERE evaluated_at >= ${FROM} AND evaluated_at < ${TO}`,
      `SELECT DISTINCT tenant FROM ${this.#db}.verdicts WHERE time >= ${FROM} AND time < ${TO}`,
      `SELECT DISTINCT tenant FROM ${this.#db}.alerts WHERE last_seen >= ${FROM} AND first_seen < ${TO}`,
      ...(includeEvents ? [`SELECT DISTINCT tenant FROM ${this.#db}.events WHERE time >= ${FROM} AND time < ${TO}`] : []),
    ];
    // Existence only: duplicates of replayed rows do not matter, so no FINAL.
    const rows = await this.#select<{ tenant: string }>(`SELECT DISTINCT tenant FROM (${parts.join(' UNION ALL ')}) ORDER BY tenant`, p, 'listing tenants to export');
    return rows.map((r) => r.tenant);
  }

  async estimateRows(tenant: string, range: TimeRange, includeEvents: boolean): Promise<number> {
    const p = { ...rangeParams(range), tenant };
    const parts = [
      `SELECT count() AS n FROM ${this.#db}.audit_log WHERE tenant = {tenant:String} AND evaluated_at >= ${FROM} AND evaluated_at < ${TO}`,
      `SELECT count() AS n FROM ${this.#db}.verdicts WHERE tenant = {tenant:String} AND time >= ${FROM} AND time < ${TO}`,
      `SELECT count() AS n FROM ${this.#db}.alerts WHERE tenant = {tenant:String} AND last_seen >= ${FROM} AND first_seen < ${TO}`,
      ...(includeEvents ? [`SELECT count() AS n FROM ${this.#db}.events WHERE tenant = {tenant:String} AND time >= ${FROM} AND time < ${TO}`] : []),
    ];
    const rows = await this.#select<{ n: Int64Json }>(`SELECT sum(n) AS n FROM (${parts.join(' UNION ALL ')})`, p, 'counting rows to export');
    return rows[0] === undefined ? 0 : toInteger(rows[0].n, 'count');
  }

  async *auditRows(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<AuditRecord[]> {
    // Cut points per chain: the last seq evaluated before `from` and before `to`
    // (-1: none). Max and existence ignore duplicates, so no FINAL here.
    const cuts = await this.#select<{ bus_partition: Int64Json; lo: Int64Json; hi: Int64Json }>(
      `SELECT bus_partition,
         if(countIf(evaluated_at < ${FROM}) = 0, -1, toInt64(maxIf(seq, evaluated_at < ${FROM}))) AS lo,
         if(countIf(evaluated_at < ${TO}) = 0, -1, toInt64(maxIf(seq, evaluated_at < ${TO}))) AS hi
       FROM ${this.#db}.audit_log
       WHERE tenant = {tenant:String} AND evaluated_at < ${TO}
       GROUP BY bus_partition ORDER BY bus_partition`,
      { ...rangeParams(range), tenant },
      'reading audit chain cut points',
    );
    for (const cut of cuts) {
      const partition = toInteger(cut.bus_partition, 'audit_log.bus_partition');
      const hi = toInteger(cut.hi, 'audit_log.seq');
      let after = toInteger(cut.lo, 'audit_log.seq');
      while (after < hi) {
        const rows = await this.#select<AuditRow>(
          `SELECT ${AUDIT_COLUMNS} FROM ${this.#db}.audit_log FINAL
           WHERE tenant = {tenant:String} AND bus_partition = {partition:Int32} AND toInt64(seq) > {after:Int64} AND toInt64(seq) <= {hi:Int64}
           ORDER BY seq LIMIT {limit:UInt32}`,
          { tenant, partition, after, hi, limit: pageRows },
          'reading audit rows',
        );
        if (rows.length === 0) break;
        const page = rows.map(rowToAudit);
        yield page;
        after = (page[page.length - 1] as AuditRecord).seq;
        if (rows.length < pageRows) break;
      }
    }
  }

  verdicts(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<Verdict[]> {
    return this.#pages<VerdictRow, Verdict>({
      select: `SELECT ${VERDICT_COLUMNS} FROM ${this.#db}.verdicts FINAL`,
      where: `tenant = {tenant:String} AND time >= ${FROM} AND time < ${TO}`,
      key: ['time', 'verdict_id'],
      params: { ...rangeParams(range), tenant },
      pageRows,
      map: rowToVerdict,
      cursor: (v) => [v.time, v.verdict_id],
      what: 'reading verdicts',
    });
  }

  alerts(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<Alert[]> {
    return this.#pages<AlertRow, Alert>({
      select: `SELECT ${ALERT_COLUMNS} FROM ${this.#db}.alerts FINAL`,
      where: `tenant = {tenant:String} AND last_seen >= ${FROM} AND first_seen < ${TO}`,
      key: ['first_seen', 'alert_id'],
      params: { ...rangeParams(range), tenant },
      pageRows,
      map: rowToAlert,
      cursor: (a) => [a.first_seen, a.alert_id],
      what: 'reading alerts',
    });
  }

  events(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<EventRow[]> {
    return this.#pages<Record<string, unknown> & { time_ms: Int64Json; event_id: string }, EventRow>({
      // ingested_at differs between a row and its replay: left out so a re-export is identical.
      select: `SELECT toUnixTimestamp64Milli(time) AS time_ms, * EXCEPT (time, ingested_at) FROM ${this.#db}.events FINAL`,
      where: `tenant = {tenant:String} AND time >= ${FROM} AND time < ${TO}`,
      key: ['time', 'event_id'],
      params: { ...rangeParams(range), tenant },
      pageRows,
      map: ({ time_ms, ...rest }) => ({ ...rest, event_id: rest.event_id, time: toInteger(time_ms, 'events.time') }),
      cursor: (e) => [e.time, e.event_id],
      what: 'reading events',
    });
  }

  /** Keyset pages over `(time column, id column)`, the first key being a DateTime64. */
  async *#pages<R, T>(q: {
    select: string;
    where: string;
    key: [string, string];
    params: Record<string, unknown>;
    pageRows: number;
    map: (row: R) => T;
    cursor: (item: T) => [number, string];
    what: string;
  }): AsyncIterable<T[]> {
    let after: [number, string] | null = null;
    while (true) {
      const [timeKey, idKey] = q.key;
      const keyset: string = after === null ? '' : ` AND (${timeKey}, ${idKey}) > (fromUnixTimestamp64Milli({after_time:Int64}, 'UTC'), {after_id:String})`;
      const params: Record<string, unknown> = after === null ? { ...q.params } : { ...q.params, after_time: after[0], after_id: after[1] };
      const rows: R[] = await this.#select<R>(`${q.select} WHERE ${q.where}${keyset} ORDER BY ${timeKey}, ${idKey} LIMIT {limit:UInt32}`, { ...params, limit: q.pageRows }, q.what);
      if (rows.length === 0) return;
      const page = rows.map(q.map);
      yield page;
      if (rows.length < q.pageRows) return;
      after = q.cursor(page[page.length - 1] as T);
    }
  }

  async #select<R>(query: string, params: Record<string, unknown>, what: string): Promise<R[]> {
    try {
      const result = await this.#client.query({ query, query_params: params, format: 'JSONEachRow' });
      return await result.json<R>();
    } catch (cause) {
      throw new ExportError('AW_EXPORT_READ_FAILED', `${what}: ${(cause as Error).message}`, { cause, retriable: isRetriableError(cause) });
    }
  }
}

const FROM = `fromUnixTimestamp64Milli({from:Int64}, 'UTC')`;
const TO = `fromUnixTimestamp64Milli({to:Int64}, 'UTC')`;

function rangeParams(range: TimeRange): Record<string, unknown> {
  return { from: range.from, to: range.to };
}

// Times leave ClickHouse as epoch-ms integers under distinct aliases: an alias
// named like its column would shadow the column in WHERE and ORDER BY.





