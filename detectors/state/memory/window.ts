import type { WindowCountOp, WindowCountResult, BaselineStats } from '../../../core/state.js';
import { SortedWindow } from '../../sorted-window.js';

/**
 * In-memory sliding event-time window with a fixed ring of buckets.
 *
 * The ring keeps `windowMs + latenessMs` worth of buckets behind the key's
 * watermark (newest event time): enough for any on-time or late-but-allowed
 * event to see its whole window. Older ("very late") events are counted only
 * against buckets still held, and do not change state they cannot be stored in.
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
  /** Wall-clock time of the last operation, for idle expiry. */
  touchedAt = 0;

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

  add(op: WindowCountOp): WindowCountResult {
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
    const bucketsPerWindow = windowMs / bucketMs;
    const first = bucket - bucketsPerWindow + 1;
    let count = stored ? 0 : 1;
    for (let i = 0; i < size; i++) {
      const id = this.bucketIds[i] ?? Number.NaN;
      if (id >= first && id <= bucket) count += this.counts[i] ?? 0;
    }
    const baseline = this.historyWindows > 0 ? this.trackTumbling(Math.floor(ts / windowMs)) : null;
    return { op: 'window_count', count, late, baseline };
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
