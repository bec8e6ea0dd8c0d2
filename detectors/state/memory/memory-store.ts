import type { StateStore } from '../../../core/ports.js';
import type {
  CircuitOp,
  DistinctCountOp,
  FirstSeenOp,
  OpPosition,
  RecentValuesOp,
  ResultOf,
  StateOp,
  StateResult,
  TokenBucketOp,
  ValueReviewOp,
  ValueReviewResult,
  ValueSnapshotOp,
  WindowCountOp,
} from '../../../core/state.js';
import { DistinctWindowState } from './distinct-window.js';
import { FirstSeenState } from './first-seen.js';
import { RecentValuesState } from './recent-values.js';
import { CircuitState } from './circuit.js';
import type { ReplayedKeyState } from './replay-log.js';
import { TokenBucketState } from './token-bucket.js';
import { ValueSnapshotState, missingValueReview } from './value-snapshot.js';
import { SlidingWindowState } from './window.js';

export interface MemoryStateStoreOptions {
  /**
   * Keys idle (no operation) for this long are dropped by `sweep()`, like Redis
   * TTLs; an operation's `retainMs` keeps its key longer.
   * @default 86_400_000 (one day)
   */
  idleTtlMs?: number;
}

/**
 * The embedded state store: the same semantics as the Redis store, in process.
 * `applyStateOpsSync` is what the pure-decision benchmark and the embedded
 * worker use; `applyStateOps` satisfies the async port.
 *
 * Each operation kind has its own key space: one key string used with two
 * kinds names two independent states (detectors give each kind its own key
 * part) — except `value_review`, which reviews the `value_snapshot` state of its key.
 */
export class MemoryStateStore implements StateStore {
  private readonly windows = new Map<string, SlidingWindowState>();
  /** Window keys whose last operation asked to be kept longer than the idle TTL, with that time (window.ts has no field for it). */
  private readonly retainedWindows = new Map<string, number>();
  private readonly distinctWindows = new Map<string, DistinctWindowState>();
  private readonly firstSeen = new Map<string, FirstSeenState>();
  private readonly tokenBuckets = new Map<string, TokenBucketState>();
  private readonly valueSnapshots = new Map<string, ValueSnapshotState>();
  private readonly recentValues = new Map<string, RecentValuesState>();
  private readonly circuits = new Map<string, CircuitState>();
  private readonly idleTtlMs: number;
  private replayed = 0;
  private replayedPruned = 0;

  constructor(options: MemoryStateStoreOptions = {}) {
    this.idleTtlMs = options.idleTtlMs ?? 86_400_000;
  }

  applyStateOpsSync<O extends StateOp>(ops: readonly O[], now = Date.now()): ResultOf<O['op']>[] {
    const results = new Array<StateResult>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as StateOp;
      switch (op.op) {
        case 'window_count':
          results[i] = this.windowCount(op, now);
          break;
        case 'distinct_count':
          results[i] = this.answer(this.distinctWindow(op), op, now);
          break;
        case 'first_seen':
          results[i] = this.answer(this.stateOf(this.firstSeen, op, FirstSeenState), op, now);
          break;
        case 'token_bucket':
          results[i] = this.answer(this.tokenBucket(op), op, now);
          break;
        case 'value_snapshot':
          results[i] = this.answer(this.stateOf(this.valueSnapshots, op, ValueSnapshotState), op, now);
          break;
        case 'value_review':
          results[i] = this.valueReview(op, now);
          break;
        case 'recent_values':
          results[i] = this.answer(this.stateOf(this.recentValues, op, RecentValuesState, `${op.key}\u0000${op.series}`), op, now);
          break;
        case 'circuit':
          results[i] = this.answer(this.stateOf(this.circuits, op, CircuitState, `${op.key}\u0000${op.series}`), op, now);
          break;
        default:
          throw new Error(`memory state store: unknown operation ${(op as { op: string }).op}`);
      }
    }
    return results as ResultOf<O['op']>[];
  }

  applyStateOps<O extends StateOp>(ops: readonly O[]): Promise<ResultOf<O['op']>[]> {
    return Promise.resolve(this.applyStateOpsSync(ops));
  }

  private windowCount(op: WindowCountOp, now: number): StateResult {
    let state = this.windows.get(op.key);
    if (!sameWindow(state, op)) {
      // A changed policy config starts a fresh window rather than mixing bucket
      // sizes; the replay memory goes with it, so a replayed operation under the
      // new config is applied to the fresh window.
      state = new SlidingWindowState(op.windowMs, op.bucketMs, op.latenessMs, op.historyWindows);
      this.windows.set(op.key, state);
    }
    state.touchedAt = now;
    if (op.retainMs !== undefined && op.retainMs > this.idleTtlMs) this.retainedWindows.set(op.key, op.retainMs);
    else if (this.retainedWindows.size !== 0) this.retainedWindows.delete(op.key);
    const result = state.add(op);
    if (state.lastAnswer !== 'applied') {
      this.replayed++;
      if (state.lastAnswer === 'replayed-pruned') this.replayedPruned++;
    }
    return result;
  }

  /**
   * A review works on the `value_snapshot` state of its key. Only an applied
   * one touches the key (its idle time and TTL, as any operation): a read must
   * neither create a key nor shorten the retention the detector asked for.
   */
  private valueReview(op: ValueReviewOp, now: number): ValueReviewResult {
    const state = this.valueSnapshots.get(op.key);
    if (state === undefined) return missingValueReview();
    const result = state.review(op);
    if (result.applied) {
      state.touchedAt = now;
      state.ttlMs = this.ttlOf(op);
    }
    return result;
  }

  private distinctWindow(op: DistinctCountOp): DistinctWindowState {
    let state = this.distinctWindows.get(op.key);
    if (!sameWindow(state, op)) {
      // As for window_count: a changed config starts afresh, replay memory included.
      // `maxMembers` is not part of it: it only bounds what later operations store.
      state = new DistinctWindowState(op.windowMs, op.bucketMs, op.latenessMs, op.historyWindows);
      this.distinctWindows.set(op.key, state);
    }
    return state;
  }

  private tokenBucket(op: TokenBucketOp): TokenBucketState {
    let state = this.tokenBuckets.get(op.key);
    if (state === undefined) {
      state = new TokenBucketState(op);
      this.tokenBuckets.set(op.key, state);
    }
    return state;
  }

  /** The key's state of a kind without config, created empty on first use. */
  private stateOf<S>(states: Map<string, S>, op: FirstSeenOp | ValueSnapshotOp | RecentValuesOp | CircuitOp, create: new () => S, key = op.key): S {
    let state = states.get(key);
    if (state === undefined) {
      state = new create();
      states.set(key, state);
    }
    return state;
  }

  /**
   * Answers `op` on its key's state and counts replays. Every operation, a
   * replay too, restarts the key's idle time with its own TTL, as each Redis
   * operation sets its key's PEXPIRE.
   */
  private answer<O extends OpPosition, R extends object>(state: ReplayedKeyState<O, R>, op: O, now: number): R {
    state.touchedAt = now;
    state.ttlMs = this.ttlOf(op);
    const result = state.answer(op);
    if (state.lastAnswer !== 'applied') {
      this.replayed++;
      if (state.lastAnswer === 'replayed-pruned') this.replayedPruned++;
    }
    return result;
  }

  /** How long a key may stay idle after `op`: its `retainMs` when longer than the idle TTL. */
  private ttlOf(op: { retainMs?: number }): number {
    return op.retainMs !== undefined && op.retainMs > this.idleTtlMs ? op.retainMs : this.idleTtlMs;
  }

  /** Operations answered as replays (already applied at their bus position) since the store was created. */
  get replayedOps(): number {
    return this.replayed;
  }

  /**
   * Replays whose first result had already been pruned (or was never kept),
   * answered from the key's current state instead (see `SlidingWindowState`
   * and `ReplayedKeyState`). Non-zero only when a committed offset moved backwards.
   */
  get prunedReplayOps(): number {
    return this.replayedPruned;
  }

  /**
   * Drops keys idle longer than their TTL (the idle TTL, or the longer
   * `retainMs` of the key's last operation); returns how many were dropped.
   */
  sweep(now = Date.now()): number {
    let dropped = 0;
    for (const [key, state] of this.windows) {
      if (now - state.touchedAt > (this.retainedWindows.get(key) ?? this.idleTtlMs)) {
        this.windows.delete(key);
        this.retainedWindows.delete(key);
        dropped++;
      }
    }
    for (const states of this.replayedKeySpaces()) {
      for (const [key, state] of states) {
        if (now - state.touchedAt > state.ttlMs) {
          states.delete(key);
          dropped++;
        }
      }
    }
    return dropped;
  }

  /** Number of live keys, all operation kinds together (for metrics and tests). */
  size(): number {
    let size = this.windows.size;
    for (const states of this.replayedKeySpaces()) size += states.size;
    return size;
  }

  close(): Promise<void> {
    this.windows.clear();
    this.retainedWindows.clear();
    for (const states of this.replayedKeySpaces()) states.clear();
    return Promise.resolve();
  }

  private replayedKeySpaces(): Map<string, { touchedAt: number; ttlMs: number }>[] {
    return [this.distinctWindows, this.firstSeen, this.tokenBuckets, this.valueSnapshots, this.recentValues, this.circuits];
  }
}

/** The window shape a window-like key was built for. */
interface WindowShape {
  windowMs: number;
  bucketMs: number;
  latenessMs: number;
  historyWindows: number;
}

/** Whether `state` exists and has the window shape `op` asks for (another shape starts the key afresh). */
function sameWindow<S extends WindowShape>(state: S | undefined, op: WindowShape): state is S {
  return (
    state !== undefined &&
    state.windowMs === op.windowMs &&
    state.bucketMs === op.bucketMs &&
    state.latenessMs === op.latenessMs &&
    state.historyWindows === op.historyWindows
  );
}
