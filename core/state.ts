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
  /** See {@link OpPosition.retainMs}. */
  retainMs?: number;
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

/**
 * Fields every operation carries. `partition`, `offset` and `committedOffset`
 * are filled in by the runtime (`planBatch`); detectors plan them as -1.
 *
 * Replays (all operation kinds): a key remembers, per partition, the newest
 * offset applied to it. An operation at or below that offset is a replay: it
 * changes nothing and returns the result it gave the first time, which the key
 * keeps while the offset is at or above the partition's committed offset. A
 * replay whose stored result was already pruned (only possible when a committed
 * offset moved backwards) is answered from the current state without applying.
 * An operation with offset -1 is always applied.
 */
export interface OpPosition {
  key: string;
  /**
   * Keep the key at least this long without operations (ms). Keys expire after
   * the store's idle TTL (default one day) otherwise: fine for windows, wrong
   * for what must outlive a quiet weekend — approved values, known resources.
   */
  retainMs?: number;
  partition: number;
  offset: number;
  committedOffset: number;
  /** Event time (ms). */
  ts: number;
}

/**
 * Adds `member` at event time `ts` to a sliding event-time window of distinct
 * members and reads how many distinct members the window `(ts - windowMs, ts]`
 * holds, at bucket granularity. Lateness and `historyWindows` (a baseline of
 * the distinct counts of completed tumbling windows) work as for `window_count`.
 *
 * Counting: the memory store keeps exact sets (up to `maxMembers` per bucket;
 * beyond that, further members are not stored and the result says
 * `approximate`); Redis keeps one HyperLogLog per bucket and merges the window's
 * buckets with PFCOUNT (standard error 0.81 %; below a few hundred members the
 * estimate is almost always exact, and `approximate` is then false).
 */
export interface DistinctCountOp extends OpPosition {
  op: 'distinct_count';
  member: string;
  windowMs: number;
  bucketMs: number;
  latenessMs: number;
  historyWindows: number;
  /** Most members kept per bucket by the memory store. */
  maxMembers: number;
}

export interface DistinctCountResult {
  op: 'distinct_count';
  /** Distinct members in the window, this one included. */
  count: number;
  late: boolean;
  baseline: BaselineStats | null;
  /** The count may be off: the memory store hit `maxMembers`, or Redis's estimate exceeded its exact range. */
  approximate: boolean;
}

/**
 * Records that `member` was seen at `ts` and says whether it is new: never
 * seen, or last seen more than `lookbackMs` before `ts` (`lookbackMs` 0: never
 * forgotten). The key keeps each member's newest time seen; past `maxMembers`
 * it forgets the members seen longest ago first.
 */
export interface FirstSeenOp extends OpPosition {
  op: 'first_seen';
  member: string;
  lookbackMs: number;
  maxMembers: number;
}

export interface FirstSeenResult {
  op: 'first_seen';
  /** New within the lookback. */
  first: boolean;
  /** The member's newest time seen before this operation (ms), null when unknown. */
  lastSeen: number | null;
  /** Members the key holds after this operation. */
  members: number;
}

/**
 * Takes one token from an event-time token bucket of `capacity` tokens that
 * refills at `refillPerSecond` (a new bucket starts full). The bucket's clock is
 * the newest event time seen, so a late event refills nothing. When no whole
 * token is left the event is not allowed and takes nothing.
 */
export interface TokenBucketOp extends OpPosition {
  op: 'token_bucket';
  capacity: number;
  refillPerSecond: number;
}

export interface TokenBucketResult {
  op: 'token_bucket';
  allowed: boolean;
  /** Tokens left after this operation. */
  tokens: number;
}

/**
 * Tracks a value under approval (a capability set, a key fingerprint): returns
 * the approved value and the last value seen before this operation, then
 * records `value` as the last seen. The first value ever seen becomes the
 * approved one (trust on first use); with `autoApprove` every value does.
 * Reviews (`value_review`) approve or reject values of the same key.
 */
export interface ValueSnapshotOp extends OpPosition {
  op: 'value_snapshot';
  value: string;
  autoApprove: boolean;
}

export interface ValueSnapshotResult {
  op: 'value_snapshot';
  /** The approved value before this operation; null on first sight. */
  approved: string | null;
  /** The last value seen before this operation; null on first sight. */
  previous: string | null;
  /** When the approved value was set (event time, or the wall-clock time of a review; ms); null on first sight. */
  approvedAt: number | null;
  /** The value an administrator rejected last (`value_review`), while not approved since; null when none. */
  rejected: string | null;
  /** When it was rejected (wall-clock time of the review, ms); null when nothing is rejected. */
  rejectedAt: number | null;
}

/**
 * A person's review of the value a `value_snapshot` key tracks (the same key):
 * `read` its state, `approve` or `reject` the last value seen.
 *
 * Not an event on the bus: it is applied every time, never answered as a
 * replay, and leaves no trace in the replay log. `read` changes nothing — a
 * missing key stays missing and keeps no TTL it did not have. An `approve` or
 * `reject` is applied only when `value` is the last value seen (all nulls:
 * never, on a missing key), so an administrator cannot approve something
 * other than what they looked at; applied, it restarts the key's idle time
 * with the operation's `retainMs` like any operation, and otherwise changes
 * nothing at all.
 *
 * - approve: the approved value becomes `value` at `ts`; a rejection of that
 *   same value is cleared.
 * - reject: `value` becomes the rejected one at `ts` (replacing an earlier
 *   rejection); the approved value stays.
 */
export interface ValueReviewOp {
  op: 'value_review';
  key: string;
  action: 'read' | 'approve' | 'reject';
  /** approve/reject: the value being reviewed; applied only if it is the last value seen (guards against approving something other than what the admin looked at). */
  value?: string;
  /** Wall-clock ms of the review. */
  ts: number;
  /** See {@link OpPosition.retainMs}. */
  retainMs?: number;
  /**
   * Ignored: a review has no bus position. Optional fields rather than none so
   * that code filling in the positions of a `StateOp[]` (`planBatch`) needs no
   * case for reviews.
   */
  partition?: number;
  offset?: number;
  committedOffset?: number;
}

/** The key's state after the review (before it, unchanged, when not applied). */
export interface ValueReviewResult {
  op: 'value_review';
  approved: string | null;
  /** The last value seen. */
  last: string | null;
  approvedAt: number | null;
  rejected: string | null;
  rejectedAt: number | null;
  /** An approve or reject changed the key; always false for `read`. */
  applied: boolean;
}

/**
 * Records the numeric sample `value` at `ts` and reports the samples of
 * `(ts - windowMs, ts]` seen before it: their maximum and the newest one. The
 * key keeps at most `maxSamples` samples (the newest).
 */
export interface RecentValuesOp extends OpPosition {
  op: 'recent_values';
  /**
   * Which series of the key (e.g. one key per agent, a series per MCP server):
   * series are independent; they share the key's TTL and replay log (one
   * event never feeds two series of one key).
   */
  series: string;
  value: number;
  windowMs: number;
  maxSamples: number;
}

export interface RecentValuesResult {
  op: 'recent_values';
  /** Largest earlier sample in the window; null when there is none. */
  max: number | null;
  /** The newest earlier sample (by event time) in the window; null when there is none. */
  previous: number | null;
}

/**
 * A circuit breaker over the calls to one target (a tool, an MCP server): one
 * series of a key, as for `recent_values`. Applying a call:
 *
 * 1. an open circuit whose `openMs` have passed (`ts >= openedAt + openMs`)
 *    closes, and forgets its samples (the next verdict rests on fresh calls);
 * 2. with `record`, the call is recorded as a sample (ts, failed, durationMs;
 *    -1 = unknown), after the samples with the same or an earlier time; samples
 *    at or before `newest - windowMs` are dropped, then the oldest beyond
 *    `maxSamples` (without `record` — a call about to be made, with no outcome
 *    yet — nothing is recorded: the operation asks whether the circuit is open);
 * 3. over the samples of `(ts - windowMs, ts]`: `calls`, `failures`, and `p95`
 *    (nearest rank: the ceil(0.95 · n)-th smallest known latency; null if none);
 * 4. a closed circuit opens at `ts` when `calls >= minCalls` and either
 *    `errorRatePct > 0` and `failures · 100 > errorRatePct · calls`, or
 *    `p95LatencyMs > 0` and `p95 > p95LatencyMs` (`tripped`).
 * An open circuit stays open whatever its calls do until `openMs` has passed.
 */
export interface CircuitOp extends OpPosition {
  op: 'circuit';
  series: string;
  /** Record this call as a sample (false: only judge the circuit at `ts`). */
  record: boolean;
  failed: boolean;
  durationMs: number;
  windowMs: number;
  minCalls: number;
  errorRatePct: number;
  p95LatencyMs: number;
  openMs: number;
  maxSamples: number;
}

export interface CircuitResult {
  op: 'circuit';
  /** The circuit after this call: open means calls are to be denied. */
  open: boolean;
  /** When it opened (event time, ms); null while closed. */
  openedAt: number | null;
  /** This call opened it. */
  tripped: boolean;
  calls: number;
  failures: number;
  p95: number | null;
}

export type StateOp = WindowCountOp | DistinctCountOp | FirstSeenOp | TokenBucketOp | ValueSnapshotOp | ValueReviewOp | RecentValuesOp | CircuitOp;
export type StateResult =
  | WindowCountResult
  | DistinctCountResult
  | FirstSeenResult
  | TokenBucketResult
  | ValueSnapshotResult
  | ValueReviewResult
  | RecentValuesResult
  | CircuitResult;

/** The result type of an operation kind. */
export type ResultOf<K extends StateOp['op']> = Extract<StateResult, { op: K }>;

/** How long approved values and "known" sets outlive an agent's silence: {@link OpPosition.retainMs}. */
export const LONG_RETENTION_MS = 400 * 86_400_000;

/**
 * Every state key is built here. Keys of one agent share the `{tenant/agent}`
 * hash tag so that a Redis Cluster keeps them on one slot.
 */
export function agentStateKey(tenant: string, agentId: string, policyId: string, part: string): string {
  // Cached: the same string instance every time, so the stores' Map lookups reuse
  // its hash instead of hashing a freshly built key for every operation.
  let byAgent = keyCache.get(tenant);
  if (byAgent === undefined) keyCache.set(tenant, (byAgent = new Map()));
  let byPolicy = byAgent.get(agentId);
  if (byPolicy === undefined) byAgent.set(agentId, (byPolicy = new Map()));
  let byPart = byPolicy.get(policyId);
  if (byPart === undefined) byPolicy.set(policyId, (byPart = new Map()));
  let key = byPart.get(part);
  if (key === undefined) {
    if (++cachedKeys > KEY_CACHE_LIMIT) {
      keyCache.clear();
      cachedKeys = 1;
      return agentStateKey(tenant, agentId, policyId, part);
    }
    key = `aw:{${keyPart(tenant)}/${keyPart(agentId)}}:${policyId}:${part}`;
    byPart.set(part, key);
  }
  return key;
}

/** tenant → agent → policy → part → key; cleared when it holds more than {@link KEY_CACHE_LIMIT} keys. */
const keyCache = new Map<string, Map<string, Map<string, Map<string, string>>>>();
const KEY_CACHE_LIMIT = 200_000;
let cachedKeys = 0;

/** Characters that would make two (tenant, agent) pairs share a key, or end the hash tag early. */
const KEY_SPECIAL = /[%/{}|]/;

/**
 * A tenant, agent or scope as it goes into a key: `%`, `/`, `{`, `}` and `|`
 * percent-encoded, so tenant `acme` with agent `ci/runner` and tenant `acme/ci`
 * with agent `runner` get different keys, and a `}` cannot end the hash tag.
 */
function keyPart(value: string): string {
  return KEY_SPECIAL.test(value) ? value.replace(/[%/{}|]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : value;
}

/**
 * A key shared by all agents of a tenant (e.g. `new_mcp_server` with scope
 * tenant), or by a named group within it (`scope` "host:build-7"). Its hash tag
 * is the tenant (plus scope), so it lives on its own slot.
 */
export function sharedStateKey(tenant: string, scope: string, policyId: string, part: string): string {
  return scope === '' ? `aw:{${keyPart(tenant)}}:${policyId}:${part}` : `aw:{${keyPart(tenant)}|${keyPart(scope)}}:${policyId}:${part}`;
}
