/** What the progress line shows. */
export interface ProgressState {
  /** Rows written so far. */
  rows: number;
  /** Rows expected (an estimate; the bar stops at 100%). */
  totalRows: number;
  /** Exports done and planned. */
  exportsDone: number;
  exports: number;
  /** What is being exported now, e.g. `acme 2026-11-23`. */
  current: string;
}

/**
 * One progress line, at most `width` characters:
 * `[#########-----------]  45%  12,345/27,000 rows  3/9 exports  acme 2026-11-23`.
 */
export function formatProgress(state: ProgressState, width = 100): string {
  const fraction = state.totalRows > 0 ? Math.min(1, state.rows / state.totalRows) : state.exports > 0 ? state.exportsDone / state.exports : 1;
  const barWidth = 24;
  const filled = Math.round(fraction * barWidth);
  const n = (x: number): string => x.toLocaleString('en-US');
  const line = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${n(state.rows)}/${n(Math.max(state.rows, state.totalRows))} rows  ${state.exportsDone}/${state.exports} exports  ${state.current}`;
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}
