import { median, medianAbsoluteDeviation } from 'simple-statistics';
import type { BaselineStats } from '../core/state.js';

/** Scales a MAD to a standard-deviation equivalent for normally distributed data. */
export const MAD_TO_SIGMA = 1.4826;

/** Median and MAD of completed-window counts. Both state stores call this when a window closes. */
export function robustStats(history: readonly number[]): BaselineStats {
  if (history.length === 0) return { windows: 0, median: 0, mad: 0 };
  return { windows: history.length, median: median([...history]), mad: medianAbsoluteDeviation([...history]) };
}

/**
 * Spread used against a baseline. Counts of steady agents often have MAD 0,
 * which would make any single extra event "infinitely" unusual; the floor is
 * the Poisson standard deviation sqrt(median) (and at least 1), so a steady
 * agent must exceed its usual count by k of its natural noise to fire.
 */
export function baselineScale(stats: BaselineStats): number {
  return Math.max(MAD_TO_SIGMA * stats.mad, Math.sqrt(Math.max(stats.median, 0)), 1);
}

/** The count above which a value is anomalous: median + k · scale. */
export function baselineLimit(stats: BaselineStats, k: number): number {
  return stats.median + k * baselineScale(stats);
}
