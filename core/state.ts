/**
 * State operations: what a detector asks of the window state store for one
 * event. The store executes all operations of a batch in one round trip and
 * returns one result per operation, in order. Both store adapters (memory,
 * Redis) implement exactly these semantics; a conformance suite holds them together.
 */

/**
 * Add one occurrence at event time `ts` to a sliding event-time window and read
 * the count of occurrences in `(ts - windowMs, ts]`, at bucket granularity.
 *
 * The key also tracks the newest event time seen (its watermark): an event more
 * than `latenessMs` behind it still counts in its own bucket but is reported `late`.
 *
 * With `historyWindows > 0` the key keeps the counts of the last completed
 * tumbling windows of `windowMs` (idle windows count as zero) and returns their
 * robust statistics, computed when a window closes — so the per-event cost stays O(1).
 */
export interface WindowCountOp {
  op: 'window_count';
  key: string;
  /**
   * Where the event sits on the bus: its partition and offset (-1 when it did not
   * come from a partitioned log). One agent's keys only ever see one partition, so
   * a key remembers the newest (partition, offset) applied and treats an operation
   * at or below it as a replay: it changes nothing and returns the result it gave
   * the first time (kept until the partition's committed offset passes it).
   */
  partition: number;
  offset: number;
  /** The partition's committed offset when the batch started; stored replay results below it may be dropped. */
  committedOffset: number;
  ts: number;
  windowMs: number;
  bucketMs: number;
  latenessMs: number;
  historyWindows: number;
}

export interface BaselineStats {
  /** Completed windows in the history. */
  windows: number;
  median: number;
  /** Median absolute deviation (unscaled). */
  mad: number;
}

export interface WindowCountResult {
  op: 'window_count';
  count: number;
  late: boolean;
  baseline: BaselineStats | null;
}

export type StateOp = WindowCountOp;
export type StateResult = WindowCountResult;

/**
 * Every state key is built here. Keys of one agent share the `{tenant/agent}`
 * hash tag so that a Redis Cluster keeps them on one slot.
 */
export function agentStateKey(tenant: string, agentId: string, policyId: string, part: string): string {
  return `aw:{${tenant}/${agentId}}:${policyId}:${part}`;
}
