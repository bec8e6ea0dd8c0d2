import { Cron } from 'croner';
import { DateTime } from 'luxon';
import { ExportError } from './errors.js';

/**
 * Export periods: calendar days, ISO weeks and months in an IANA time zone
 * (a day is 23 or 25 hours across a DST change), plus arbitrary backfill
 * ranges. Pure functions over epoch milliseconds; no IO.
 */

export const PeriodKinds = ['daily', 'weekly', 'monthly'] as const;
export type PeriodKind = (typeof PeriodKinds)[number];
/** `custom`: a backfill range given as `--from`/`--to`. */
export type ChainKind = PeriodKind | 'custom';

/** One export period, `[from, to)` in epoch milliseconds. */
export interface Period {
  /** `2026-11-23` (daily), `2026-W48` (weekly), `2026-11` (monthly), `<from>_<to>` (custom). */
  id: string;
  kind: ChainKind;
  from: number;
  to: number;
  /** Zone the boundaries were computed in. */
  timezone: string;
}

/** A day, ISO week or month. */
export type CalendarPeriod = Period & { kind: PeriodKind };

const UNIT: Record<PeriodKind, 'day' | 'week' | 'month'> = { daily: 'day', weekly: 'week', monthly: 'month' };
const ID_FORMAT: Record<PeriodKind, string> = { daily: 'yyyy-LL-dd', weekly: "kkkk-'W'WW", monthly: 'yyyy-LL' };

/** The calendar period of `kind` holding instant `ms` in `timezone` (weeks start on Monday, ISO). */
export function periodContaining(ms: number, kind: PeriodKind, timezone: string): CalendarPeriod {
  const start = DateTime.fromMillis(ms, { zone: timezone }).startOf(UNIT[kind]);
  if (!start.isValid) throw new ExportError('AW_EXPORT_INVALID_CONFIG', `unknown time zone "${timezone}"`);
  // plus() works in calendar units, so across a DST change a day is 23 or 25 hours.
  const end = start.plus({ [UNIT[kind]]: 1 }).startOf(UNIT[kind]);
  return { id: start.toFormat(ID_FORMAT[kind]), kind, from: start.toMillis(), to: end.toMillis(), timezone };
}

/** The period right after `period` (same kind and zone). */
export function nextPeriod(period: CalendarPeriod): CalendarPeriod {
  return periodContaining(period.to, period.kind, period.timezone);
}

/** The period right before `period` (same kind and zone). */
export function previousPeriod(period: CalendarPeriod): CalendarPeriod {
  return periodContaining(period.from - 1, period.kind, period.timezone);
}

/**
 * A backfill range as one period. Its id is `<from>_<to>`, each bound as
 * `yyyy-LL-dd` when it is a midnight in `timezone`, else as a UTC timestamp
 * (`20261123T101500Z`), so ids stay valid file names everywhere.
 */
export function customPeriod(from: number, to: number, timezone: string): Period {
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from < to)) {
    throw new ExportError('AW_EXPORT_INVALID_RANGE', `the range must be non-empty: from ${new Date(from).toISOString()} is not before to ${new Date(to).toISOString()}`);
  }
  const bound = (ms: number): string => {
    const local = DateTime.fromMillis(ms, { zone: timezone });
    return local.startOf('day').toMillis() === ms ? local.toFormat('yyyy-LL-dd') : DateTime.fromMillis(ms, { zone: 'utc' }).toFormat("yyyyLLdd'T'HHmmssSSS'Z'");
  };
  return { id: `${bound(from)}_${bound(to)}`, kind: 'custom', from, to, timezone };
}

/** Every whole period of `kind` that overlaps `[from, to)`, oldest first. */
export function periodsOverlapping(from: number, to: number, kind: PeriodKind, timezone: string): Period[] {
  if (!(from < to)) throw new ExportError('AW_EXPORT_INVALID_RANGE', `the range must be non-empty: from ${new Date(from).toISOString()} is not before to ${new Date(to).toISOString()}`);
  const periods: Period[] = [];
  for (let p = periodContaining(from, kind, timezone); p.from < to; p = nextPeriod(p)) periods.push(p);
  return periods;
}

/**
 * When `period` is due under `cron`: its first firing at or after the
 * period's end. (croner's `nextRun(t)` is the first firing strictly after
 * `t`, at whole seconds; asking from a millisecond before the end includes a
 * firing at the end itself.)
 */
export function dueAt(period: Pick<Period, 'to'>, cron: Cron): number {
  const next = cron.nextRun(new Date(period.to - 1));
  // A pattern that never fires again (a date in the past) leaves the period never due.
  return next === null ? Number.POSITIVE_INFINITY : next.getTime();
}

/** A paused croner job used only to compute firing times. */
export function cronIn(pattern: string, timezone: string): Cron {
  return new Cron(pattern, { paused: true, timezone });
}

/**
 * Parses a `--from`/`--to` value: a date (`2026-11-23`, midnight in
 * `timezone`), a local date-time without offset (`2026-11-23T06:00`, in
 * `timezone`), or an ISO date-time with `Z` or an offset.
 */
export function parseTimeArgument(text: string, timezone: string, name: string): number {
  const parsed = DateTime.fromISO(text.trim(), { zone: timezone, setZone: false });
  if (!/^\d{4}-\d{2}-\d{2}/.test(text.trim()) || !parsed.isValid) {
    throw new ExportError('AW_EXPORT_INVALID_RANGE', `${name}: expected a date (2026-11-23) or an ISO date-time (2026-11-23T06:00:00Z), got ${JSON.stringify(text)}`);
  }
  return parsed.toMillis();
}
