import type { WindowCountOp, WindowCountResult, BaselineStats } from '../../../core/state.js';
import { SortedWindow } from '../../sorted-window.js';

/** How `SlidingWindowState.add` answered its last operation (for replay metrics). */
export type WindowAnswer = 'applied' | 'replayed' | 'replayed-pruned';

/**
 * In-memory sliding event-time window with a fixed ring of buckets.
 *
 * The ring keeps `windowMs + latenessMs` worth of buckets behind the key's
 * watermark (newest event time): enough for any on-time or late-but-allowed
 * event to see its whole window. Older ("very late") events are counted only
 * against buckets still held, and do not change state they cannot be stored in.
 *
 * Replays: the key remembers the newest bus position (partition, offset) it
 * applied, and the results of applied operations at or above the batch's
 * committed offset. An operation at or below that position on the same
 * partition is a replay (Kafka is at-least-once) and gets its first result back
 * without touching the window. The Redis store's Lua script implements exactly
 * this; the state-store conformance suite holds the two together.
 */
export class SlidingWindowState {
  private readonly bucketIds: Float64Array;
  private readonly counts: Uint32Array;
  private watermark = -Infinity;
  // Tumbling-window history for baselines.
  private currentWindow = Number.NaN;
  private currentCount = 0;
  private readonly history: SortedWindow;
  private stats: BaselineStats = { windows: 0, median: 0, mad: 0 };
  // Replay memory: newest position applied, and the results that may still be replayed.
  private partition = -1;
  private offset = -1;
  private readonly replayOffsets: number[] = [];
  private readonly replayResults: WindowCountResult[] = [];
  /** Index of the first live entry of the two arrays above (pruning moves it; compaction resets it). */
  private replayHead = 0;
  /** Wall-clock time of the last operation, for idle expiry. */
  touchedAt = 0;
  /** How the last `add` was answered. */
  lastAnswer: WindowAnswer = 'applied';

  constructor(
    readonly windowMs: number,
    readonly bucketMs: number,
    readonly latenessMs: number,
    readonly historyWindows: number,
  ) {
    const size = Math.ceil((windowMs + latenessMs) / bucketMs) + 1;
    this.bucketIds = new Float64Array(size).fill(Number.NaN);
    this.counts = new Uint32Array(size);
    this.history = new SortedWindow(Math.max(historyWindows, 1));
  }

  /**
   * Applies the operation once: a replay (same partition, offset at or below the
   * newest applied) changes nothing and returns the result of its first application.
   * Returned results must not be mutated: they are kept for replays.
   */
  add(op: WindowCountOp): WindowCountResult {
    const positioned = op.partition >= 0 && op.offset >= 0;
    if (positioned && op.partition === this.partition && op.offset <= this.offset) return this.replay(op);
    this.lastAnswer = 'applied';
    const result = this.apply(op);
    if (positioned) this.remember(op, result);
    return result;
  }

  private apply(op: WindowCountOp): WindowCountResult {
    const { ts, windowMs, bucketMs } = op;
    const late = ts < this.watermark - this.latenessMs;
    if (ts > this.watermark) this.watermark = ts;
    const bucket = Math.floor(ts / bucketMs);
    const size = this.bucketIds.length;
    const slot = ((bucket % size) + size) % size;
    const oldestHeld = Math.floor(this.watermark / bucketMs) - size + 1;
    let stored = false;
    if (bucket >= oldestHeld) {
      if (this.bucketIds[slot] !== bucket) {
        this.bucketIds[slot] = bucket;
        this.counts[slot] = 0;
      }
      this.counts[slot] = (this.counts[slot] ?? 0) + 1;
      stored = true;
    }
    const count = (stored ? 0 : 1) + this.heldCount(bucket, windowMs / bucketMs);
    const baseline = this.historyWindows > 0 ? this.trackTumbling(Math.floor(ts / windowMs)) : null;
    return { op: 'window_count', count, late, baseline };
  }

  /** Occurrences in held buckets of the window ending at `bucket`. */
  private heldCount(bucket: number, bucketsPerWindow: number): number {
    const first = bucket - bucketsPerWindow + 1;
    let count = 0;
    for (let i = 0; i < this.bucketIds.length; i++) {
      const id = this.bucketIds[i] ?? Number.NaN;
      if (id >= first && id <= bucket) count += this.counts[i] ?? 0;
    }
    return count;
  }

  private replay(op: WindowCountOp): WindowCountResult {
    for (let i = this.replayHead; i < this.replayOffsets.length; i++) {
      const offset = this.replayOffsets[i] as number;
      if (offset > op.offset) break;
      if (offset === op.offset) {
        this.lastAnswer = 'replayed';
        const first = this.replayResults[i] as WindowCountResult;
        return { ...first };
      }
    }
    // The first result was pruned (its offset was below a later batch's committed
    // offset) or never kept (the operation was below its own batch's committed
    // offset). Only a committed offset moving backwards (a consumer-group reset)
    // replays such an offset, and applying it again would count the event twice:
    // answer from the current state instead — the window as it stands, the event
    // included (+1 only when its bucket is no longer held, as on first application),
    // lateness against the current watermark, the current baseline. The result
    // type has no room for a marker; `lastAnswer` (and the stores' prunedReplayOps
    // counter) records it.
    this.lastAnswer = 'replayed-pruned';
    const { ts, windowMs, bucketMs } = op;
    const bucket = Math.floor(ts / bucketMs);
    const oldestHeld = Math.floor(this.watermark / bucketMs) - this.bucketIds.length + 1;
    const count = (bucket < oldestHeld ? 1 : 0) + this.heldCount(bucket, windowMs / bucketMs);
    const late = ts < this.watermark - this.latenessMs;
    return { op: 'window_count', count, late, baseline: this.historyWindows > 0 ? this.stats : null };
  }

  /** Moves the key's position to the applied operation and keeps its result while it can still be replayed. */
  private remember(op: WindowCountOp, result: WindowCountResult): void {
    if (op.partition !== this.partition) {
      // Results of another partition can never be replayed against this one.
      this.partition = op.partition;
      this.replayOffsets.length = 0;
      this.replayResults.length = 0;
      this.replayHead = 0;
    }
    this.offset = op.offset;
    // Offsets below the committed offset are never delivered again.
    while (this.replayHead < this.replayOffsets.length && (this.replayOffsets[this.replayHead] as number) < op.committedOffset) {
      this.replayHead++;
    }
    if (this.replayHead > 64 && this.replayHead * 2 > this.replayOffsets.length) {
      this.replayOffsets.splice(0, this.replayHead);
      this.replayResults.splice(0, this.replayHead);
      this.replayHead = 0;
    }
    if (op.offset >= op.committedOffset) {
      this.replayOffsets.push(op.offset);
      this.replayResults.push(result);
    }
  }

  private trackTumbling(window: number): BaselineStats {
    if (Number.isNaN(this.currentWindow)) {
      this.currentWindow = window;
      this.currentCount = 1;
    } else if (window === this.currentWindow) {
      this.currentCount++;
    } else if (window > this.currentWindow) {
      // Close the current window and record idle windows in between as zeros.
      this.history.push(this.currentCount);
      this.history.pushRepeated(0, window - this.currentWindow - 1);
      this.stats = this.history.stats();
      this.currentWindow = window;
      this.currentCount = 1;
    }
    // An event in an already closed window does not rewrite history.
    return this.stats;
  }
}
