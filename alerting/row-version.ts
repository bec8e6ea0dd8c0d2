/**
 * The next row version of a record kept in a replacing table (alerts,
 * silences): the change time, or one more than the previous version when the
 * clock has not moved past it — two changes in one millisecond, or a clock
 * stepped back, must still produce a newer row.
 */
export function nextVersion(previous: number, now: number): number {
  return now > previous ? now : previous + 1;
}
