import {
  DeliveryChanges,
  DeliverySinkKinds,
  DeliveryStatuses,
  type AlertDelivery,
  type DeliveryStore,
} from '../../core/ports.js';
import type { Alert } from '../../core/records.js';
import { StorageError } from '../errors.js';
import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';
import { badRow, oneOf, toInteger, type Int64Json } from './rows.js';

/** Most rows one `pendingDeliveries` call returns. */
export const MAX_PENDING_LIMIT = 100_000;
/** Alert ids per query of `latestDeliveries`: keeps each query's parameter small. */
const ALERT_ID_CHUNK = 1000;
/** Notification ids per query of `getDeliveries`. */
const NOTIFICATION_ID_CHUNK = 1000;

// Times leave as epoch-ms integers under aliases unlike their columns (an alias
// named like its column would shadow it in WHERE and ORDER BY).
const DELIVERY_COLUMNS = `notification_id, alert_id, tenant, sink, sink_kind, change, alert, status, attempts, last_error,
  toUnixTimestamp64Milli(created_at) AS created_at_ms, toUnixTimestamp64Milli(next_attempt_at) AS next_attempt_at_ms,
  toUnixTimestamp64Milli(delivered_at) AS delivered_at_ms, toUnixTimestamp64Milli(updated_at) AS updated_at_ms, version`;

const INSERT_COLUMNS = [
  'notification_id', 'alert_id', 'tenant', 'sink', 'sink_kind', 'change', 'alert', 'status', 'attempts', 'last_error',
  'created_at', 'next_attempt_at', 'delivered_at', 'updated_at', 'version',
] as const satisfies readonly [string, ...string[]];

interface DeliveryRow {
  notification_id: string;
  alert_id: string;
  tenant: string;
  sink: string;
  sink_kind: string;
  change: string;
  alert: string;
  status: string;
  attempts: Int64Json;
  last_error: string;
  created_at_ms: Int64Json;
  next_attempt_at_ms: Int64Json;
  delivered_at_ms: Int64Json;
  updated_at_ms: Int64Json;
  version: Int64Json;
}

/**
 * {@link DeliveryStore} on ClickHouse (`alert_deliveries`, migration 0006).
 * Values travel as `{name:Type}` query parameters; the validated database
 * name is the only text spliced into SQL. Reads use FINAL, which applies
 * before WHERE: a delivery whose newest version is `delivered` is never read
 * as the older `pending` one.
 */
export class ClickHouseDeliveryStore implements DeliveryStore {
  readonly #client: ClickHouseClient;
  readonly #db: string;

  /** @throws StorageError `AW_STORAGE_INVALID_CONFIG` when `database` is not a plain identifier. */
  constructor(client: ClickHouseClient, database: string) {
    this.#client = client;
    this.#db = assertIdentifier(database);
  }

  async upsertDeliveries(deliveries: readonly AlertDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    try {
      await this.#client.insert({
        table: `${this.#db}.alert_deliveries`,
        values: deliveries.map(deliveryValues),
        format: 'JSONCompactEachRow',
        columns: [...INSERT_COLUMNS],
      });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_INSERT_FAILED', `inserting ${deliveries.length} alert deliver${deliveries.length === 1 ? 'y' : 'ies'}`, cause);
    }
  }

  async getDeliveries(notificationIds: readonly string[]): Promise<AlertDelivery[]> {
    const found: AlertDelivery[] = [];
    for (let i = 0; i < notificationIds.length; i += NOTIFICATION_ID_CHUNK) {
      const ids = [...new Set(notificationIds.slice(i, i + NOTIFICATION_ID_CHUNK))];
      const rows = await this.#select(
        `SELECT ${DELIVERY_COLUMNS} FROM ${this.#db}.alert_deliveries FINAL WHERE notification_id IN {ids:Array(String)}`,
        { ids },
        'reading alert deliveries',
      );
      found.push(...rows.map(rowToDelivery));
    }
    return found;
  }

  /** @throws StorageError `AW_STORAGE_INVALID_FILTER` for a limit out of 1..{@link MAX_PENDING_LIMIT}. */
  async pendingDeliveries(limit: number): Promise<AlertDelivery[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PENDING_LIMIT) {
      throw new StorageError('AW_STORAGE_INVALID_FILTER', `limit must be an integer from 1 to ${MAX_PENDING_LIMIT} (got ${limit})`);
    }
    const rows = await this.#select(
      `SELECT ${DELIVERY_COLUMNS} FROM ${this.#db}.alert_deliveries FINAL WHERE status = 'pending'
       ORDER BY next_attempt_at, created_at, notification_id LIMIT {limit:UInt32}`,
      { limit },
      'reading pending alert deliveries',
    );
    return rows.map(rowToDelivery);
  }

  /** Sorted by alert id, then sink. A long-open alert has a reminder row per interval; only the newest per sink is read. */
  async latestDeliveries(alertIds: readonly string[]): Promise<AlertDelivery[]> {
    const found: AlertDelivery[] = [];
    for (let i = 0; i < alertIds.length; i += ALERT_ID_CHUNK) {
      const ids = [...new Set(alertIds.slice(i, i + ALERT_ID_CHUNK))];
      const rows = await this.#select(
        `SELECT ${DELIVERY_COLUMNS} FROM ${this.#db}.alert_deliveries FINAL WHERE alert_id IN {ids:Array(String)}
         ORDER BY alert_id, sink, created_at DESC, notification_id DESC
         LIMIT 1 BY alert_id, sink`,
        { ids },
        'reading the latest alert deliveries',
      );
      found.push(...rows.map(rowToDelivery));
    }
    return found.sort((a, b) => compare(a.alert_id, b.alert_id) || compare(a.sink, b.sink));
  }

  async deliveriesFor(alertId: string, tenant?: string): Promise<AlertDelivery[]> {
    const rows = await this.#select(
      `SELECT ${DELIVERY_COLUMNS} FROM ${this.#db}.alert_deliveries FINAL
       WHERE alert_id = {alert_id:String} ${tenant === undefined ? '' : 'AND tenant = {tenant:String}'}
       ORDER BY created_at DESC, notification_id DESC`,
      { alert_id: alertId, ...(tenant === undefined ? {} : { tenant }) },
      "reading an alert's deliveries",
    );
    return rows.map(rowToDelivery);
  }

  async #select(query: string, params: Record<string, unknown>, what: string): Promise<DeliveryRow[]> {
    try {
      const result = await this.#client.query({ query, query_params: params, format: 'JSONEachRow' });
      return await result.json<DeliveryRow>();
    } catch (cause) {
      throw toStorageError('AW_STORAGE_QUERY_FAILED', what, cause);
    }
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A delivery as an `alert_deliveries` row, values in {@link INSERT_COLUMNS} order; times as epoch ms (DateTime64(3) ticks). */
function deliveryValues(d: AlertDelivery): unknown[] {
  return [
    d.notification_id, d.alert_id, d.tenant, d.sink, d.sink_kind, d.change, JSON.stringify(d.alert), d.status, d.attempts, d.last_error,
    d.created_at, d.next_attempt_at, d.delivered_at, d.updated_at, d.version,
  ];
}

function rowToDelivery(row: DeliveryRow): AlertDelivery {
  return {
    notification_id: row.notification_id,
    alert_id: row.alert_id,
    tenant: row.tenant,
    sink: row.sink,
    sink_kind: oneOf(DeliverySinkKinds, row.sink_kind, 'alert_deliveries.sink_kind'),
    change: oneOf(DeliveryChanges, row.change, 'alert_deliveries.change'),
    alert: parseAlert(row.alert),
    status: oneOf(DeliveryStatuses, row.status, 'alert_deliveries.status'),
    attempts: toInteger(row.attempts, 'alert_deliveries.attempts'),
    last_error: row.last_error,
    created_at: toInteger(row.created_at_ms, 'alert_deliveries.created_at'),
    next_attempt_at: toInteger(row.next_attempt_at_ms, 'alert_deliveries.next_attempt_at'),
    delivered_at: toInteger(row.delivered_at_ms, 'alert_deliveries.delivered_at'),
    updated_at: toInteger(row.updated_at_ms, 'alert_deliveries.updated_at'),
    version: toInteger(row.version, 'alert_deliveries.version'),
  };
}

/** The alert snapshot; written by this store from an `Alert`, so a shape check suffices. */
function parseAlert(json: string): Alert {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw badRow('alert_deliveries.alert', json);
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { alert_id?: unknown }).alert_id !== 'string') {
    throw badRow('alert_deliveries.alert', json);
  }
  return parsed as Alert;
}
