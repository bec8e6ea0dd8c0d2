import { IANAZone } from 'luxon';
import { z } from 'zod';
import type { Finding, PolicyType } from '../../core/detector.js';
import { coreError } from '../../core/errors.js';
import type { AgentEvent } from '../../core/event.js';
import { TimeZoneSchema, type ValidatedPolicy } from '../../core/policy.js';
import type { Evidence } from '../../core/records.js';
import { agentLabel } from '../describe.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Days of the week in ISO order (Monday first); a day's index is its bit in a day mask. */
export const Weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof Weekdays)[number];
const WEEKDAY_LABELS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const ALL_DAYS_MASK = 0b111_1111;

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

/** "HH:MM" on a 24-hour clock, 00:00–23:59. */
const START_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;
/** Like START_TIME, plus "24:00" for "until the end of the day". */
const END_TIME = /^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$/;

/** Minutes after local midnight of an "HH:MM" string the schema accepted; NaN otherwise. */
function minuteOfDay(hhmm: string): number {
  const m = END_TIME.exec(hhmm);
  if (m === null) return Number.NaN;
  const hours = m[1] ?? m[3];
  const minutes = m[2] ?? m[4];
  return Number(hours) * 60 + Number(minutes);
}

/** True when "YYYY-MM-DD" names a day of the proleptic Gregorian calendar (2024-02-29 yes, 2026-02-30 no). */
function isCalendarDate(date: string): boolean {
  const year = Number(date.slice(0, 4));
  const month = Number(date.slice(5, 7));
  const day = Number(date.slice(8, 10));
  if (month < 1 || month > 12 || day < 1) return false;
  // Day 0 of the next month is the last day of this one.
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const CalendarDateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date "YYYY-MM-DD"')
  .superRefine((value, ctx) => {
    if (!isCalendarDate(value)) ctx.addIssue({ code: 'custom', message: `${value} is not a calendar date` });
  });

/** A day off: a date, or a date with a name that findings quote. */
const HolidaySchema = z.union(
  [
    CalendarDateSchema,
    z.strictObject({
      /** The local date, "YYYY-MM-DD". */
      date: CalendarDateSchema,
      /** Shown in findings, e.g. "Christmas Day". */
      name: z.string().min(1).max(128).optional(),
    }),
  ],
  { error: 'must be a date "YYYY-MM-DD" or { date, name }' },
);
export type Holiday = z.output<typeof HolidaySchema>;

export const OffHoursConfigSchema = z
  .strictObject({
    /** First minute of business hours, local "HH:MM" (inclusive). @default "09:00" */
    start: z.string().regex(START_TIME, 'must be a time "HH:MM" from 00:00 to 23:59').default('09:00'),
    /**
     * End of business hours, local "HH:MM" (exclusive); "24:00" is the end of the day.
     * An `end` earlier than `start` is an overnight shift (22:00–06:00) that
     * belongs to the day it starts on. Must differ from `start`.
     * @default "18:00"
     */
    end: z.string().regex(END_TIME, 'must be a time "HH:MM" from 00:00 to 24:00').default('18:00'),
    /** Business days; duplicates are accepted and removed, the order does not matter. @default ["mon","tue","wed","thu","fri"] */
    days: z
      .array(z.enum(Weekdays, { error: `must be one of ${Weekdays.join(', ')}` }))
      .min(1, 'must name at least one business day (with none, every event would be off-hours)')
      .transform((days) => Weekdays.filter((d) => days.includes(d)))
      .default(['mon', 'tue', 'wed', 'thu', 'fri']),
    /** IANA time zone the hours are in. @default the policy document's `timezone` */
    timezone: TimeZoneSchema.optional(),
    /**
     * Whole days off in the policy's time zone: "YYYY-MM-DD" or `{ date, name }`.
     * An overnight shift that starts on a holiday is off too.
     * @default []
     */
    holidays: z.array(HolidaySchema).max(10_000).default([]),
  })
  .superRefine((config, ctx) => {
    const start = minuteOfDay(config.start);
    const end = minuteOfDay(config.end);
    // "00:00"–"24:00" is the whole day; only the same minute twice is ambiguous.
    if (start === end) {
      ctx.addIssue({
        code: 'custom',
        path: ['end'],
        message: `must differ from start (${config.start}); for round-the-clock hours use start "00:00" and end "24:00"`,
      });
    }
  });
export type OffHoursConfig = z.output<typeof OffHoursConfigSchema>;

// ---------------------------------------------------------------------------
// Local wall time, fast
// ---------------------------------------------------------------------------

/**
 * Every UTC offset and transition of the IANA database since 1970 falls on a
 * quarter hour (+05:45, +12:45, transitions at local 02:00 …), so the offset is
 * constant within an aligned 15-minute slice of UTC. A slice's offset is read
 * from ICU once (through luxon) and memoised; the rare slice that holds a
 * transition anyway (Africa/Monrovia left −00:44:30 at 00:44:30 UTC in 1972)
 * is detected by comparing both ends and always takes the exact path.
 */
const SLICE_MS = 15 * MINUTE_MS;
/** About ten days of slices: a worker's events are near "now", plus some late stragglers. */
const MAX_CACHED_SLICES = 1024;

/**
 * Local wall-clock time of instants in one IANA time zone. Per-call cost on a
 * cache hit is one Map lookup plus arithmetic; an in-order stream usually
 * skips even the lookup.
 */
export class ZoneClock {
  readonly zoneName: string;
  private readonly zone: IANAZone;
  /** slice number → offset in ms, or NaN for a slice holding a transition. */
  private readonly slices = new Map<number, number>();
  private lastSlice = Number.NaN;
  private lastOffsetMs = 0;

  /** @throws AgentwatchError AW_CORE_INVALID_CONFIG when `zoneName` is not an IANA zone this runtime knows. */
  constructor(zoneName: string) {
    const zone = IANAZone.create(zoneName);
    if (!zone.isValid) throw coreError('AW_CORE_INVALID_CONFIG', `unknown time zone "${zoneName}"`);
    this.zoneName = zoneName;
    this.zone = zone;
  }

  /** The zone's UTC offset at `ms`, in milliseconds (east positive). */
  offsetMs(ms: number): number {
    const slice = Math.floor(ms / SLICE_MS);
    if (slice === this.lastSlice) return this.lastOffsetMs;
    let offset = this.slices.get(slice);
    if (offset === undefined) {
      const first = slice * SLICE_MS;
      const atFirst = this.exactOffsetMs(first);
      offset = atFirst === this.exactOffsetMs(first + SLICE_MS - 1) ? atFirst : Number.NaN;
      if (this.slices.size >= MAX_CACHED_SLICES) {
        // Insertion order is age order: drop the oldest slice.
        const oldest = this.slices.keys().next();
        if (oldest.done !== true) this.slices.delete(oldest.value);
      }
      this.slices.set(slice, offset);
    }
    if (Number.isNaN(offset)) return this.exactOffsetMs(ms);
    this.lastSlice = slice;
    this.lastOffsetMs = offset;
    return offset;
  }

  /** Local wall time of `ms` as milliseconds since local 1970-01-01T00:00, so UTC date arithmetic applies. */
  wallMs(ms: number): number {
    return ms + this.offsetMs(ms);
  }

  /** Slices memoised right now (bounded by an internal limit). */
  get cachedSlices(): number {
    return this.slices.size;
  }

  private exactOffsetMs(ms: number): number {
    // luxon reports minutes, fractional for historical offsets with seconds.
    return Math.round(this.zone.offset(ms) * MINUTE_MS);
  }
}

/** Days since 1970-01-01 → weekday index, Monday = 0 (1970-01-01 was a Thursday). */
function weekdayOfDay(day: number): number {
  return (((day + 3) % 7) + 7) % 7;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Days since 1970-01-01 → "YYYY-MM-DD". */
function isoDateOfDay(day: number): string {
  const d = new Date(day * DAY_MS);
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}

function dayOfIsoDate(date: string): number {
  return Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10))) / DAY_MS;
}

/** "+01:00", "-03:30", "+05:45". */
function formatOffset(offsetMs: number): string {
  const minutes = Math.round(Math.abs(offsetMs) / MINUTE_MS);
  return `${offsetMs < 0 ? '-' : '+'}${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
}

/**
 * "Mon–Fri", "Sun–Thu", "Mon, Wed, Fri", "every day". Runs of three or more
 * days get a dash; a run that wraps past Sunday is kept whole ("Fri–Mon").
 */
export function describeDays(mask: number): string {
  if ((mask & ALL_DAYS_MASK) === ALL_DAYS_MASK) return 'every day';
  const has = (i: number): boolean => ((mask >> ((i + 7) % 7)) & 1) === 1;
  // Begin at Monday unless a run wraps into it from Sunday: then at that run's first day.
  let first = 0;
  while (has(first) && has(first - 1)) first += 1;
  const parts: string[] = [];
  for (let i = first; i < first + 7; ) {
    if (!has(i)) {
      i += 1;
      continue;
    }
    let j = i;
    while (j + 1 < first + 7 && has(j + 1)) j += 1;
    const from = WEEKDAY_LABELS[i % 7] ?? '';
    const to = WEEKDAY_LABELS[j % 7] ?? '';
    if (j - i >= 2) parts.push(`${from}–${to}`);
    else if (j === i + 1) parts.push(from, to);
    else parts.push(from);
    i = j + 1;
  }
  return parts.join(', ');
}

// ---------------------------------------------------------------------------
// Policy type
// ---------------------------------------------------------------------------

export interface CompiledOffHours {
  clock: ZoneClock;
  /** Minutes after local midnight, inclusive. */
  startMinute: number;
  /** Minutes after local midnight, exclusive (1440 = end of day). */
  endMinute: number;
  /** `end` < `start`: the shift runs past midnight and belongs to the day it starts on. */
  overnight: boolean;
  /** Bit `i` set: weekday `i` (Monday = 0) is a business day. */
  dayMask: number;
  /** Local day number (days since 1970-01-01) → holiday name ('' when unnamed). */
  holidays: Map<number, string>;
  /** "09:00–18:00 Mon–Fri", for reasons. */
  hoursLabel: string;
}

/**
 * The local day whose business hours would cover `minute` of `day`, or null
 * when that minute is outside the hours of every day. An overnight shift's
 * small hours belong to the previous day.
 */
function shiftDayOf(c: CompiledOffHours, day: number, minute: number): number | null {
  if (!c.overnight) return minute >= c.startMinute && minute < c.endMinute ? day : null;
  if (minute >= c.startMinute) return day;
  if (minute < c.endMinute) return day - 1;
  return null;
}

function isBusinessDay(c: CompiledOffHours, day: number): boolean {
  return ((c.dayMask >> weekdayOfDay(day)) & 1) === 1 && !c.holidays.has(day);
}

function offHoursFinding(event: AgentEvent, c: CompiledOffHours, wall: number, day: number, minute: number, shiftDay: number | null): Finding {
  const weekday = weekdayOfDay(day);
  const localTime = `${pad2(Math.floor(minute / 60))}:${pad2(minute % 60)}`;
  const localDate = isoDateOfDay(day);
  const weekdayLabel = WEEKDAY_LABELS[weekday] ?? '';
  // The day that counts: the shift's day when the time is within hours, else the event's own date.
  const countedDay = shiftDay ?? day;
  const holidayName = c.holidays.get(countedDay);
  const evidence: Evidence = {
    local_time: localTime,
    local_date: localDate,
    weekday: Weekdays[weekday] ?? '',
    timezone: c.clock.zoneName,
    utc_offset: formatOffset(wall - event.time),
    holiday: holidayName !== undefined,
    business_hours: c.hoursLabel,
  };
  let holidayNote = '';
  if (holidayName !== undefined) {
    const holidayDate = isoDateOfDay(countedDay);
    evidence.holiday_date = holidayDate;
    if (holidayName !== '') evidence.holiday_name = holidayName;
    const named = holidayName === '' ? '' : ` ${holidayName}`;
    holidayNote = countedDay === day ? ` (holiday${holidayName === '' ? '' : `: ${holidayName}`})` : ` (in the shift of holiday ${holidayDate}${named})`;
  }
  return {
    reason:
      `${agentLabel(event)} acted at ${localTime} ${weekdayLabel} ${localDate} ${c.clock.zoneName}${holidayNote}, ` +
      `outside business hours ${c.hoursLabel}`,
    evidence,
  };
}

/**
 * `off_hours`: the event happened outside business hours or business days, or
 * on a holiday, in the policy's time zone. Stateless: no `plan`.
 */
export const offHoursPolicy: PolicyType<OffHoursConfig, CompiledOffHours> = {
  type: 'off_hours',
  configSchema: OffHoursConfigSchema,
  // AML.T0012 Valid Accounts: work at hours when nobody is at the keyboard is
  // the classic sign of an agent's credentials or session being used by
  // someone else. (AML.T0040 Inference API Access describes model access, not
  // the misuse of an agent's identity that this policy catches.)
  defaultAtlas: ['AML.T0012'],

  compile(policy: ValidatedPolicy<OffHoursConfig>, ctx): CompiledOffHours {
    const config = policy.config;
    const startMinute = minuteOfDay(config.start);
    const endMinute = minuteOfDay(config.end);
    if (Number.isNaN(startMinute) || Number.isNaN(endMinute) || startMinute === endMinute) {
      throw coreError('AW_CORE_INVALID_CONFIG', `policy ${policy.id}: invalid business hours ${config.start}–${config.end}`);
    }
    let dayMask = 0;
    for (const d of config.days) dayMask |= 1 << Weekdays.indexOf(d);
    const holidays = new Map<number, string>();
    for (const h of config.holidays) {
      const date = typeof h === 'string' ? h : h.date;
      const name = typeof h === 'string' ? '' : (h.name ?? '');
      const day = dayOfIsoDate(date);
      // A date listed twice keeps the first name given.
      const known = holidays.get(day);
      if (known === undefined || known === '') holidays.set(day, name);
    }
    return {
      clock: new ZoneClock(config.timezone ?? ctx.timezone),
      startMinute,
      endMinute,
      overnight: endMinute < startMinute,
      dayMask,
      holidays,
      hoursLabel: `${config.start}–${config.end} ${describeDays(dayMask)}`,
    };
  },

  decide(event: AgentEvent, _results, c: CompiledOffHours): Finding | null {
    const wall = c.clock.wallMs(event.time);
    const day = Math.floor(wall / DAY_MS);
    const minute = Math.floor((wall - day * DAY_MS) / MINUTE_MS);
    const shiftDay = shiftDayOf(c, day, minute);
    if (shiftDay !== null && isBusinessDay(c, shiftDay)) return null;
    return offHoursFinding(event, c, wall, day, minute, shiftDay);
  },
};
