/** Numbers shown on the live terminal summary. */
export interface SummarySnapshot {
  events: number;
  verdicts: number;
  openAlerts: number;
  deadLetters: number;
  decisions: Record<string, number>;
}

/**
 * Formats one summary line from two snapshots taken `elapsedMs` apart:
 * `events 12,345 (812/s) · verdicts 420 · open alerts 4 · dead letters 2 · would deny 37`.
 */
export function formatSummary(previous: SummarySnapshot, current: SummarySnapshot, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? Math.round(((current.events - previous.events) * 1000) / elapsedMs) : 0;
  const n = (x: number) => x.toLocaleString('en-US');
  const parts = [
    `events ${n(current.events)} (${n(rate)}/s)`,
    `verdicts ${n(current.verdicts)}`,
    `open alerts ${n(current.openAlerts)}`,
    `dead letters ${n(current.deadLetters)}`,
  ];
  const deny = current.decisions.deny ?? 0;
  const approval = current.decisions.require_approval ?? 0;
  const throttle = current.decisions.throttle ?? 0;
  if (deny + approval + throttle > 0) parts.push(`would deny ${n(deny)} · approve ${n(approval)} · throttle ${n(throttle)}`);
  return parts.join(' · ');
}
