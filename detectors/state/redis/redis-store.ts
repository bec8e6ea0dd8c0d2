import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import type { StateStore } from '../../../core/ports.js';
import type { BaselineStats, ResultOf, StateOp, StateResult } from '../../../core/state.js';
import { StateError, stateErrorFromRedis } from './errors.js';
import { isValidKeyPrefix, redisKeys, type RedisKeys } from './keys.js';

/** What the store knows when it finds that Redis lost the window state. */
export interface StateLostInfo {
  /** The dataset epoch the store saw before. */
  previousEpoch: string;
  /** The epoch in Redis now. */
  epoch: string;
  /**
   * `missing`: the epoch key was gone — FLUSHDB/FLUSHALL, a restart without
   * persistence, eviction. `replaced`: another epoch is there — another worker
   * already noticed the loss and set a new one, or this is another dataset
   * (failover to a replica that never had ours, a different server).
   */
  reason: 'missing' | 'replaced';
  /** Wall-clock time of detection (ms). */
  detectedAt: number;
}

/** The part of a pino logger the store uses. */
export interface RedisStateStoreLogger {
  error(obj: object, msg: string): void;
  warn?(obj: object, msg: string): void;
}

export interface RedisStateStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster` client (the caller keeps owning it: `close()`
   * leaves it open), or a `redis://` URL (the store creates the client and closes it).
   */
  redis: Redis | Cluster | string;
  /**
   * Prepended to every key (tests use a random one each). No braces: the
   * agent's `{tenant/agent}` must stay the key's hash tag.
   * @default ""
   */
  keyPrefix?: string;
  /**
   * Window keys with no operation for this long expire (PEXPIRE on every
   * operation). Keep it above the longest window plus lateness of any policy.
   * @default 86_400_000 (one day)
   */
  idleTtlMs?: number;
  /** Called once per detected loss of the window state (see {@link RedisStateStore.stateLostAt}). */
  onStateLost?: (info: StateLostInfo) => void;
  /** Receives the loud error-level log line of a state loss. */
  logger?: RedisStateStoreLogger;
}

/** The largest bucket ring a window key may hold (12 bytes a slot). */
const MAX_RING_SLOTS = 100_000;

/** The registered name of `lua/apply-1.lua`. */
const APPLY_COMMAND = 'awApply';

/** Reply flags of the window-count operation. */
const FLAG_LATE = 1;
const FLAG_REPLAY = 2;
const FLAG_REPLAY_PRUNED = 4;
/** Reply flags (first element) of every other operation. */
const OP_FLAG_REPLAY = 1;
const OP_FLAG_PRUNED = 2;

/** Opcodes of lua/apply-1.lua. */
const OPCODE: Record<StateOp['op'], string> = {
  window_count: 'w',
  distinct_count: 'd',
  first_seen: 'f',
  token_bucket: 't',
  value_snapshot: 'v',
  value_review: 'a',
  recent_values: 'r',
  circuit: 'b',
};

type ApplyArgs = [numberOfKeys: number, ...keysAndArgs: (string | number)[]];

interface ApplyPipeline {
  awApply(...args: ApplyArgs): ChainableCommander;
}

interface ApplyClient {
  awApply(...args: ApplyArgs): Promise<unknown>;
}

type Reply = [error: Error | null, result: unknown];

/** One `awApply` call: the operations of a batch that share a hash tag. */
interface OpGroup {
  /** Indexes into the batch's operations, in order. */
  indexes: number[];
  keys: string[];
  keyIndex: Map<string, number>;
  args: (string | number)[];
}

/**
 * The Redis adapter of the window state store: the memory store's semantics
 * (`detectors/state/memory/`), kept in one hash per state key (plus
 * HyperLogLogs for distinct counts) and updated by Lua: one file per operation
 * kind under `lua/ops/`, all loaded into one registered script (`lua/apply-1.lua`).
 *
 * `applyStateOps` groups the operations by hash tag — one agent, or one shared
 * scope — and sends one script call per group, all of them in one pipeline (one
 * round trip) together with a check of the dataset epoch. One failed operation
 * fails the call, and the caller retries the whole batch (operations are
 * idempotent per bus position, so the retry cannot double count). On a Cluster
 * the calls go out as individual commands at once (a pipeline must stay on one
 * slot; every call does); give the Cluster `enableAutoPipelining: true` to batch them per node.
 *
 * State-loss detection: the store keeps a random epoch in `aw:meta:state-epoch`
 * and reads it with every batch. Windows and baselines live only in Redis; if
 * Redis is flushed, restarted without persistence, evicts keys or is replaced,
 * every agent's windows silently restart from zero, and rate and baseline
 * detectors stop firing until they refill — an attacker's burst right then goes
 * unseen. Nothing in the results shows it, so the store reports it: an
 * error-level log, `onStateLost`, and {@link stateLostAt} for health checks.
 */
export class RedisStateStore implements StateStore {
  private readonly client: Redis | Cluster;
  private readonly ownsClient: boolean;
  private readonly keys: RedisKeys;
  private readonly idleTtlMs: number;
  private readonly onStateLost: ((info: StateLostInfo) => void) | undefined;
  private readonly logger: RedisStateStoreLogger | undefined;
  private epoch: string | null = null;
  /** Offered with every batch (SET NX); replaced once Redis takes it, so no two datasets share one. */
  private candidateEpoch = randomUUID();
  private lostAt: number | null = null;
  private closed = false;
  private replayed = 0;
  private replayedPruned = 0;
  private lastStatsText = '';
  private lastStats: BaselineStats = Object.freeze({ windows: 0, median: 0, mad: 0 });

  constructor(options: RedisStateStoreOptions) {
    const keyPrefix = options.keyPrefix ?? '';
    if (!isValidKeyPrefix(keyPrefix)) {
      throw new StateError('AW_STATE_INVALID_CONFIG', `keyPrefix must have at most 64 characters and no braces or spaces, got ${JSON.stringify(keyPrefix)}`);
    }
    const idleTtlMs = options.idleTtlMs ?? 86_400_000;
    if (!Number.isSafeInteger(idleTtlMs) || idleTtlMs < 1) {
      throw new StateError('AW_STATE_INVALID_CONFIG', `idleTtlMs must be a positive integer (ms), got ${String(idleTtlMs)}`);
    }
    if (typeof options.redis === 'string') {
      if (!/^rediss?:\/\//.test(options.redis)) {
        throw new StateError('AW_STATE_INVALID_CONFIG', `redis must be a redis:// or rediss:// URL or an ioredis client, got ${JSON.stringify(options.redis)}`);
      }
      this.client = new Redis(options.redis);
      this.ownsClient = true;
      // Connection errors fail the operations that meet them (AW_STATE_UNAVAILABLE);
      // the listener keeps ioredis from printing each reconnect attempt as unhandled.
      this.client.on('error', (error: unknown) => options.logger?.warn?.({ err: error }, 'Redis connection error'));
    } else if (options.redis instanceof Redis || options.redis instanceof Cluster) {
      this.client = options.redis;
      this.ownsClient = false;
    } else {
      throw new StateError('AW_STATE_INVALID_CONFIG', 'redis must be a redis:// URL or an ioredis Redis or Cluster client');
    }
    this.keys = redisKeys(keyPrefix);
    this.idleTtlMs = idleTtlMs;
    this.onStateLost = options.onStateLost;
    this.logger = options.logger;
    // Registered once per client; ioredis sends EVALSHA and loads the script on NOSCRIPT.
    if (typeof (this.client as unknown as Partial<ApplyClient>).awApply !== 'function') {
      // No fixed key count: each call passes its own as the first argument.
      this.client.defineCommand(APPLY_COMMAND, { lua: applyLua() });
    }
  }

  /** When the store last found the window state lost (ms), or null; for `/healthz`. */
  get stateLostAt(): number | null {
    return this.lostAt;
  }

  /** Operations answered as replays since the store was created. */
  get replayedOps(): number {
    return this.replayed;
  }

  /** Replays whose first result had been pruned, answered from the current state (see window.ts). */
  get prunedReplayOps(): number {
    return this.replayedPruned;
  }

  async applyStateOps<O extends StateOp>(ops: readonly O[]): Promise<ResultOf<O['op']>[]> {
    if (this.closed) throw new StateError('AW_STATE_CLOSED', 'applyStateOps after close()');
    if (ops.length === 0) return [];
    for (let i = 0; i < ops.length; i++) checkOp(ops[i] as StateOp, i);
    const groups = this.group(ops);
    const candidate = this.candidateEpoch;
    const replies = this.client instanceof Cluster ? await this.sendEach(groups, candidate) : await this.sendPipeline(groups, candidate);
    if (replies.length !== groups.length + 1) {
      throw new StateError('AW_STATE_BAD_REPLY', `expected ${groups.length + 1} replies, got ${replies.length}`);
    }
    const [epochError, epochReply] = replies[0] as Reply;
    if (epochError !== null) throw stateErrorFromRedis(epochError, 'state epoch check');
    this.observeEpoch(epochReply, candidate);
    const results = new Array<StateResult>(ops.length);
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g] as OpGroup;
      const [error, reply] = replies[g + 1] as Reply;
      const first = ops[group.indexes[0] as number] as StateOp;
      if (error !== null) throw stateErrorFromRedis(error, `${group.indexes.length} state operation(s) on ${first.key}`);
      if (!Array.isArray(reply) || reply.length !== group.indexes.length) throw badReply(group.indexes[0] as number, reply);
      for (let k = 0; k < group.indexes.length; k++) {
        const index = group.indexes[k] as number;
        results[index] = this.toResult(ops[index] as StateOp, reply[k], index);
      }
    }
    return results as ResultOf<O['op']>[];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await this.client.quit().catch(() => undefined);
  }

  /**
   * One group per hash tag (one agent, or one shared scope), operations in
   * batch order within it: one script call per group instead of one per
   * operation, and every key of a call on one Cluster slot.
   */
  private group(ops: readonly StateOp[]): OpGroup[] {
    const byTag = new Map<string, OpGroup>();
    const groups: OpGroup[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as StateOp;
      const tag = hashTag(op.key);
      let group = byTag.get(tag);
      if (group === undefined) {
        group = { indexes: [], keys: [], keyIndex: new Map(), args: [0] };
        byTag.set(tag, group);
        groups.push(group);
      }
      let keyIndex = group.keyIndex.get(op.key);
      if (keyIndex === undefined) {
        group.keys.push(this.keys.windowState(op.key));
        keyIndex = group.keys.length;
        group.keyIndex.set(op.key, keyIndex);
      }
      group.indexes.push(i);
      pushOpArgs(group.args, op, keyIndex, op.retainMs === undefined || op.retainMs <= this.idleTtlMs ? this.idleTtlMs : op.retainMs);
    }
    for (const group of groups) group.args[0] = group.indexes.length;
    return groups;
  }

  private async sendPipeline(groups: readonly OpGroup[], candidate: string): Promise<Reply[]> {
    const pipeline = this.client.pipeline() as ChainableCommander & ApplyPipeline;
    pipeline.set(this.keys.stateEpoch, candidate, 'NX', 'GET');
    for (const group of groups) pipeline.awApply(group.keys.length, ...group.keys, ...group.args);
    let replies: Reply[] | null;
    try {
      replies = (await pipeline.exec()) as Reply[] | null;
    } catch (error) {
      throw stateErrorFromRedis(error, 'applyStateOps');
    }
    if (replies === null) throw new StateError('AW_STATE_BAD_REPLY', 'the pipeline returned no replies');
    return replies;
  }

  /** Cluster: one command per group, all sent at once (a pipeline would have to stay on one slot). */
  private async sendEach(groups: readonly OpGroup[], candidate: string): Promise<Reply[]> {
    const client = this.client as Cluster & ApplyClient;
    const pending: Promise<unknown>[] = [client.set(this.keys.stateEpoch, candidate, 'NX', 'GET')];
    for (const group of groups) pending.push(client.awApply(group.keys.length, ...group.keys, ...group.args));
    const settled = await Promise.allSettled(pending);
    return settled.map((s): Reply => (s.status === 'fulfilled' ? [null, s.value] : [s.reason instanceof Error ? s.reason : new Error(String(s.reason)), null]));
  }

  /**
   * `SET epoch candidate NX GET` answers null when the key was missing (Redis
   * now holds the candidate) and the stored epoch otherwise. The first answer
   * is adopted; any later change means the dataset under the windows changed.
   */
  private observeEpoch(reply: unknown, candidate: string): void {
    if (reply !== null && typeof reply !== 'string') {
      throw new StateError('AW_STATE_BAD_REPLY', `state epoch reply is ${typeof reply}`);
    }
    const current = reply ?? candidate;
    if (reply === null) this.candidateEpoch = randomUUID();
    const previous = this.epoch;
    this.epoch = current;
    if (previous === null || previous === current) return;
    const info: StateLostInfo = { previousEpoch: previous, epoch: current, reason: reply === null ? 'missing' : 'replaced', detectedAt: Date.now() };
    this.lostAt = info.detectedAt;
    this.logger?.error(
      { ...info, epochKey: this.keys.stateEpoch },
      'REDIS WINDOW STATE LOST: the state epoch changed, so every window and baseline restarted from zero. ' +
        'Rate and baseline detectors under-count until windows refill; check Redis persistence (appendonly), ' +
        'maxmemory-policy (noeviction) and failovers (docs/redis.md).',
    );
    try {
      this.onStateLost?.(info);
    } catch (error) {
      this.logger?.error({ err: error }, 'onStateLost callback threw');
    }
  }

  private toResult(op: StateOp, reply: unknown, index: number): StateResult {
    if (!Array.isArray(reply)) throw badReply(index, reply);
    const r = reply as unknown[];
    if (op.op === 'window_count') {
      const [count, flags, statsText] = r;
      if (r.length !== 3 || typeof count !== 'number' || typeof flags !== 'number' || typeof statsText !== 'string') throw badReply(index, reply);
      if ((flags & FLAG_REPLAY) !== 0) {
        this.replayed++;
        if ((flags & FLAG_REPLAY_PRUNED) !== 0) this.replayedPruned++;
      }
      return { op: 'window_count', count, late: (flags & FLAG_LATE) !== 0, baseline: statsText === '' ? null : this.parseStats(statsText, index) };
    }
    const flags = r[0];
    if (typeof flags !== 'number') throw badReply(index, reply);
    if ((flags & OP_FLAG_REPLAY) !== 0) {
      this.replayed++;
      if ((flags & OP_FLAG_PRUNED) !== 0) this.replayedPruned++;
    }
    switch (op.op) {
      case 'distinct_count': {
        const [, count, late, statsText, approximate] = r;
        if (r.length !== 5 || typeof count !== 'number' || typeof statsText !== 'string') throw badReply(index, reply);
        return { op: 'distinct_count', count, late: late === 1, baseline: statsText === '' ? null : this.parseStats(statsText, index), approximate: approximate === 1 };
      }
      case 'first_seen': {
        const [, first, lastSeen, members] = r;
        if (r.length !== 4 || typeof members !== 'number') throw badReply(index, reply);
        return { op: 'first_seen', first: first === 1, lastSeen: numberOrNull(lastSeen, index, reply), members };
      }
      case 'token_bucket': {
        const [, allowed, tokens] = r;
        if (r.length !== 3) throw badReply(index, reply);
        const n = numberOrNull(tokens, index, reply);
        if (n === null) throw badReply(index, reply);
        return { op: 'token_bucket', allowed: allowed === 1, tokens: n };
      }
      case 'value_snapshot': {
        const [, approved, previous, approvedAt, rejected, rejectedAt] = r;
        if (r.length !== 6) throw badReply(index, reply);
        return {
          op: 'value_snapshot',
          approved: stringOrNull(approved, index, reply),
          previous: stringOrNull(previous, index, reply),
          approvedAt: numberOrNull(approvedAt, index, reply),
          rejected: stringOrNull(rejected, index, reply),
          rejectedAt: numberOrNull(rejectedAt, index, reply),
        };
      }
      case 'value_review': {
        const [, approved, last, approvedAt, rejected, rejectedAt, applied] = r;
        if (r.length !== 7) throw badReply(index, reply);
        return {
          op: 'value_review',
          approved: stringOrNull(approved, index, reply),
          last: stringOrNull(last, index, reply),
          approvedAt: numberOrNull(approvedAt, index, reply),
          rejected: stringOrNull(rejected, index, reply),
          rejectedAt: numberOrNull(rejectedAt, index, reply),
          applied: applied === 1,
        };
      }
      case 'recent_values': {
        const [, max, previous] = r;
        if (r.length !== 3) throw badReply(index, reply);
        return { op: 'recent_values', max: numberOrNull(max, index, reply), previous: numberOrNull(previous, index, reply) };
      }
      case 'circuit': {
        const [, open, openedAt, tripped, calls, failures, p95] = r;
        if (r.length !== 7 || typeof calls !== 'number' || typeof failures !== 'number') throw badReply(index, reply);
        return { op: 'circuit', open: open === 1, openedAt: numberOrNull(openedAt, index, reply), tripped: tripped === 1, calls, failures, p95: numberOrNull(p95, index, reply) };
      }
    }
  }

  /** Baselines change once per closed window, so consecutive replies mostly repeat the text: parse it once. */
  private parseStats(text: string, index: number): BaselineStats {
    if (text === this.lastStatsText) return this.lastStats;
    const parts = text.split(':');
    const windows = Number(parts[0]);
    const median = Number(parts[1]);
    const mad = Number(parts[2]);
    if (parts.length !== 3 || !Number.isInteger(windows) || !Number.isFinite(median) || !Number.isFinite(mad)) throw badReply(index, text);
    this.lastStatsText = text;
    this.lastStats = Object.freeze({ windows, median, mad });
    return this.lastStats;
  }
}

function badReply(index: number, reply: unknown): StateError {
  return new StateError('AW_STATE_BAD_REPLY', `state operation #${index}: unexpected reply ${JSON.stringify(reply)}`);
}

/** A double the script sent as text (Lua numbers would arrive truncated to integers), or null for a nil reply. */
function numberOrNull(value: unknown, index: number, reply: unknown): number | null {
  if (value === null) return null;
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) throw badReply(index, reply);
  return n;
}

function stringOrNull(value: unknown, index: number, reply: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw badReply(index, reply);
  return value;
}

/** The hash tag of a key: the text between its first `{` and the next `}` (the whole key without one). */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
}

/** Appends one operation to a group's ARGV: opcode, key index, idle TTL, then the arguments its Lua function reads. */
function pushOpArgs(args: (string | number)[], op: StateOp, keyIndex: number, ttlMs: number): void {
  if (op.op === 'value_review') {
    // No bus position: a review is never a replay.
    args.push(OPCODE[op.op], keyIndex, ttlMs, op.ts, op.action, op.value ?? '');
    return;
  }
  args.push(OPCODE[op.op], keyIndex, ttlMs, op.partition, op.offset, op.committedOffset, op.ts);
  switch (op.op) {
    case 'window_count':
      args.push(op.windowMs, op.bucketMs, op.latenessMs, op.historyWindows);
      break;
    case 'distinct_count':
      args.push(op.member, op.windowMs, op.bucketMs, op.latenessMs, op.historyWindows, op.maxMembers);
      break;
    case 'first_seen':
      args.push(op.member, op.lookbackMs, op.maxMembers);
      break;
    case 'token_bucket':
      args.push(op.capacity, op.refillPerSecond);
      break;
    case 'value_snapshot':
      args.push(op.value, op.autoApprove ? 1 : 0);
      break;
    case 'recent_values':
      args.push(op.series, op.value, op.windowMs, op.maxSamples);
      break;
    case 'circuit':
      args.push(op.series, op.failed ? 1 : 0, op.durationMs, op.windowMs, op.minCalls, op.errorRatePct, op.p95LatencyMs, op.openMs, op.maxSamples, op.record ? 1 : 0);
      break;
  }
}

/** Rejects operations the scripts would misread; a detector bug, so never retriable. */
function checkOp(op: StateOp, index: number): void {
  let ok = (op.retainMs === undefined || (Number.isSafeInteger(op.retainMs) && op.retainMs > 0)) && Number.isFinite(op.ts);
  if (op.op !== 'value_review') ok &&= Number.isSafeInteger(op.partition) && Number.isSafeInteger(op.offset) && Number.isSafeInteger(op.committedOffset);
  switch (op.op) {
    case 'window_count':
    case 'distinct_count':
      ok &&=
        op.windowMs > 0 &&
        op.bucketMs > 0 &&
        op.latenessMs >= 0 &&
        Number.isSafeInteger(op.historyWindows) &&
        op.historyWindows >= 0 &&
        (op.windowMs + op.latenessMs) / op.bucketMs < MAX_RING_SLOTS;
      if (op.op === 'distinct_count') ok &&= (op.windowMs + op.latenessMs) / op.bucketMs < 1000 && op.maxMembers >= 1;
      break;
    case 'first_seen':
      ok &&= op.lookbackMs >= 0 && Number.isSafeInteger(op.maxMembers) && op.maxMembers >= 1;
      break;
    case 'token_bucket':
      ok &&= op.capacity > 0 && Number.isFinite(op.capacity) && op.refillPerSecond >= 0 && Number.isFinite(op.refillPerSecond);
      break;
    case 'value_snapshot':
      break;
    case 'value_review':
      // approve/reject must name the value reviewed; a read needs none.
      ok &&= op.action === 'read' || ((op.action === 'approve' || op.action === 'reject') && typeof op.value === 'string');
      break;
    case 'recent_values':
      ok &&= Number.isFinite(op.value) && op.windowMs > 0 && Number.isSafeInteger(op.maxSamples) && op.maxSamples >= 1;
      break;
    case 'circuit':
      ok &&=
        Number.isFinite(op.durationMs) &&
        op.windowMs > 0 &&
        op.minCalls >= 0 &&
        op.errorRatePct >= 0 &&
        op.p95LatencyMs >= 0 &&
        op.openMs >= 0 &&
        Number.isSafeInteger(op.maxSamples) &&
        op.maxSamples >= 1;
      break;
    default:
      ok = false;
  }
  if (!ok) {
    throw new StateError('AW_STATE_INVALID_OP', `state operation #${index} (${(op as StateOp).op}) on ${(op as StateOp).key} is malformed`, {
      details: { ...(op as StateOp) },
    });
  }
}

let applySource: string | undefined;

/** `lua/apply-1.lua` with its `--- @include "…"` lines replaced by the included files (each once). */
function applyLua(): string {
  applySource ??= loadLuaScript('apply-1');
  return applySource;
}
function loadLuaScript(name: string): string {
  const dir = luaDir();
  const included = new Set<string>();
  const expand = (file: string): string =>
    readFileSync(path.join(dir, `${file}.lua`), 'utf8').replace(/^--- @include "([\w/-]+)"\s*$/gm, (_line, include: string) => {
      if (included.has(include)) return '';
      included.add(include);
      return expand(include);
    });
  return expand(name);
}

/**
 * The folder of the Lua scripts. tsc does not copy them to `dist/`, so from
 * the compiled module they are found under the package root, in the source tree.
 */
function luaDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  if (existsSync(path.join(here, 'lua'))) return path.join(here, 'lua');
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'detectors', 'state', 'redis', 'lua');
    if (path.dirname(dir) === dir) throw new StateError('AW_STATE_INVALID_CONFIG', `Lua scripts not found above ${here}`);
  }
}
