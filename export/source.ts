import type { Alert, AuditRecord, Verdict } from '../core/records.js';

/** `[from, to)` in epoch milliseconds. */
export interface TimeRange {
  from: number;
  to: number;
}

/** An `events` row as stored (content is never stored), `time` in epoch ms. */
export type EventRow = Record<string, unknown> & { event_id: string; time: number };

/**
 * What an export reads, one tenant and period at a time. Every iterator
 * yields pages in a total order, so two reads of unchanged data give the
 * same sequence:
 * - audit rows: by (bus_partition, seq). The period cuts each (tenant, bus
 *   partition) chain by evaluation time: the rows after the last one
 *   evaluated before `from`, up to the last one evaluated before `to`. Each
 *   chain thus splits into contiguous segments — no row in two periods or in
 *   none, even when evaluation times are not in chain order — and the next
 *   period's first row links to this period's last.
 * - verdicts: event time in the range, by (time, verdict_id).
 * - alerts: the current version of alerts whose activity `[first_seen, last_seen]`
 *   overlaps the range, by (first_seen, alert_id).
 * - events: event time in the range, by (time, event_id).
 */
export interface ExportSource {
  /** Tenants with rows in the range in any exported table, sorted. */
  tenantsWithRows(range: TimeRange, includeEvents: boolean): Promise<string[]>;
  /** About how many rows an export of the tenant holds (progress display only). */
  estimateRows(tenant: string, range: TimeRange, includeEvents: boolean): Promise<number>;
  auditRows(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<AuditRecord[]>;
  verdicts(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<Verdict[]>;
  alerts(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<Alert[]>;
  events(tenant: string, range: TimeRange, pageRows: number): AsyncIterable<EventRow[]>;
}
