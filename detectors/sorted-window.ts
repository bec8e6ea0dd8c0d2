import type { BaselineStats } from '../core/state.js';

/**
 * The last `capacity` values in arrival order plus the same values sorted, so
 * the median is O(1) and the MAD O(n) without allocating: on a sorted array the
 * absolute deviations left of the median grow leftwards and those right of it
 * grow rightwards, so the k-th smallest deviation is found by merging the two
 * runs outward from the median. Matches `robustStats` (simple-statistics) exactly.
 */
export class SortedWindow {
  private readonly fifo: number[] = [];
  private readonly sorted: number[] = [];

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.fifo.length;
  }

  push(value: number): void {
    this.fifo.push(value);
    this.sorted.splice(lowerBound(this.sorted, value), 0, value);
    if (this.fifo.length > this.capacity) {
      const evicted = this.fifo.shift() as number;
      this.sorted.splice(lowerBound(this.sorted, evicted), 1);
    }
  }

  /** Pushes `count` equal values (idle windows), bounded by the capacity. */
  pushRepeated(value: number, count: number): void {
    const n = Math.min(count, this.capacity);
    for (let i = 0; i < n; i++) this.push(value);
  }

  stats(): BaselineStats {
    const s = this.sorted;
    const n = s.length;
    if (n === 0) return { windows: 0, median: 0, mad: 0 };
    const median = medianOfSorted(s);
    // Deviations: left run s[m-1-i] (increasing with i), right run s[m+j] (increasing with j).
    let left = lowerBound(s, median) - 1;
    let right = left + 1;
    const pick = (): number => {
      const dl = left >= 0 ? median - (s[left] as number) : Number.POSITIVE_INFINITY;
      const dr = right < n ? (s[right] as number) - median : Number.POSITIVE_INFINITY;
      if (dl <= dr) {
        left--;
        return dl;
      }
      right++;
      return dr;
    };
    // k-th smallest deviations for the median of n deviations.
    const lo = (n - 1) >> 1;
    let value = 0;
    for (let i = 0; i <= lo; i++) value = pick();
    const mad = n % 2 === 1 ? value : (value + pick()) / 2;
    return { windows: n, median, mad };
  }
}

function medianOfSorted(s: readonly number[]): number {
  const n = s.length;
  const mid = n >> 1;
  return n % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function lowerBound(s: readonly number[], value: number): number {
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((s[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
