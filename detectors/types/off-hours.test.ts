import { DateTime, IANAZone } from 'luxon';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../core/detector.js';
import type { AgentEvent } from '../../core/event.js';
import { parsePolicyDocument, type PolicyConfigSchemas, type ValidatedPolicy } from '../../core/policy.js';
import { describeDays, offHoursPolicy, OffHoursConfigSchema, ZoneClock, type OffHoursConfig } from './off-hours.js';

const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
const TOKYO = 'Asia/Tokyo';

function policyOf(config: Record<string, unknown>): ValidatedPolicy<OffHoursConfig> {
  return {
    id: 'off-hours',
    type: 'off_hours',
    enabled: true,
    severity: 'medium',
    action: 'alert',
    config: OffHoursConfigSchema.parse(config),
  };
}

function eventAt(time: string | number, agent: AgentEvent['agent'] = { id: 'agent-7', name: 'claude-code' }): AgentEvent {
  return {
    event_id: `e-${String(time)}`,
    time: typeof time === 'number' ? time : Date.parse(time),
    tenant: 'default',
    agent,
    type: 'api_call',
  };
}

/** A compiled policy and a judge over it, so a test can feed many instants through one cache. */
function judgeFor(config: Record<string, unknown>, documentZone = 'UTC'): (time: string | number) => Finding | null {
  const policy = policyOf(config);
  const compiled = offHoursPolicy.compile(policy, { timezone: documentZone });
  return (time) => offHoursPolicy.decide(eventAt(time), [], compiled, policy);
}

/** Fires (true) or not (false) for each instant, through one compiled policy. */
function firesAt(config: Record<string, unknown>, times: readonly string[], documentZone = 'UTC'): boolean[] {
  const judge = judgeFor(config, documentZone);
  return times.map((t) => judge(t) !== null);
}

const schemas: PolicyConfigSchemas = {
  get: (type) => (type === 'off_hours' ? offHoursPolicy.configSchema : undefined),
  types: () => ['off_hours'],
};

describe('off_hours policy type', () => {
  it('is stateless and names its type and ATLAS technique', () => {
    expect(offHoursPolicy.type).toBe('off_hours');
    expect(offHoursPolicy.plan).toBeUndefined();
    expect(offHoursPolicy.defaultAtlas).toEqual(['AML.T0012']);
  });

  describe('business hours (default 09:00–18:00 Mon–Fri)', () => {
    const judge = judgeFor({ timezone: BERLIN });

    it('fires at 03:12 on a Saturday, with a readable reason and local evidence', () => {
      const finding = judge('2026-11-21T03:12:00+01:00');
      expect(finding).not.toBeNull();
      expect(finding?.reason).toBe(
        'agent-7 (claude-code) acted at 03:12 Sat 2026-11-21 Europe/Berlin, outside business hours 09:00–18:00 Mon–Fri',
      );
      expect(finding?.evidence).toEqual({
        local_time: '03:12',
        local_date: '2026-11-21',
        weekday: 'sat',
        timezone: BERLIN,
        utc_offset: '+01:00',
        holiday: false,
        business_hours: '09:00–18:00 Mon–Fri',
      });
      expect(finding?.decision).toBeUndefined();
    });

    it('fires at 03:00 local on a weekday', () => {
      const finding = judge('2026-06-10T03:00:00+02:00');
      expect(finding?.evidence).toMatchObject({ local_time: '03:00', local_date: '2026-06-10', weekday: 'wed', utc_offset: '+02:00' });
    });

    it('does not fire at 10:00 local on a weekday', () => {
      expect(judge('2026-06-10T10:00:00+02:00')).toBeNull();
    });

    it('treats start as inside and end as outside', () => {
      expect(judge('2026-06-10T08:59:00+02:00')).not.toBeNull();
      expect(judge('2026-06-10T08:59:59.999+02:00')).not.toBeNull();
      expect(judge('2026-06-10T09:00:00+02:00')).toBeNull();
      expect(judge('2026-06-10T17:59:59.999+02:00')).toBeNull();
      expect(judge('2026-06-10T18:00:00+02:00')).not.toBeNull();
    });

    it('fires on the weekend at any hour', () => {
      expect(judge('2026-06-13T11:00:00+02:00')?.evidence).toMatchObject({ weekday: 'sat' });
      expect(judge('2026-06-14T14:30:00+02:00')?.evidence).toMatchObject({ weekday: 'sun' });
      expect(judge('2026-06-15T14:30:00+02:00')).toBeNull();
    });

    it('names an agent without a product name by its id alone', () => {
      const policy = policyOf({});
      const compiled = offHoursPolicy.compile(policy, { timezone: 'UTC' });
      const finding = offHoursPolicy.decide(eventAt('2026-06-13T11:00:00Z', { id: 'agent-9' }), [], compiled, policy);
      expect(finding?.reason).toBe('agent-9 acted at 11:00 Sat 2026-06-13 UTC, outside business hours 09:00–18:00 Mon–Fri');
    });
  });

  describe('days', () => {
    it('honours a Sunday–Thursday week', () => {
      const times = ['2026-06-14T10:00:00+03:00', '2026-06-11T10:00:00+03:00', '2026-06-12T10:00:00+03:00', '2026-06-13T10:00:00+03:00'];
      expect(firesAt({ days: ['sun', 'mon', 'tue', 'wed', 'thu'], timezone: 'Asia/Jerusalem' }, times)).toEqual([false, false, true, true]);
      const finding = judgeFor({ days: ['thu', 'sun', 'mon', 'tue', 'wed'], timezone: 'Asia/Jerusalem' })('2026-06-12T10:00:00+03:00');
      expect(finding?.reason).toContain('outside business hours 09:00–18:00 Sun–Thu');
    });

    it('describes day sets plainly', () => {
      const mask = (...days: number[]): number => days.reduce((m, d) => m | (1 << d), 0);
      expect(describeDays(mask(0, 1, 2, 3, 4))).toBe('Mon–Fri');
      expect(describeDays(mask(0, 2, 4))).toBe('Mon, Wed, Fri');
      expect(describeDays(mask(5, 6))).toBe('Sat, Sun');
      expect(describeDays(mask(4, 5, 6, 0))).toBe('Fri–Mon');
      expect(describeDays(mask(0, 1, 2, 3, 4, 5, 6))).toBe('every day');
      expect(describeDays(mask(6))).toBe('Sun');
    });
  });

  describe('holidays', () => {
    const judge = judgeFor({ timezone: BERLIN, holidays: ['2026-05-01', { date: '2026-12-25', name: 'Christmas Day' }] });

    it('makes a business day a full day off, quoting the holiday', () => {
      const finding = judge('2026-12-25T10:15:00+01:00');
      expect(finding?.reason).toBe(
        'agent-7 (claude-code) acted at 10:15 Fri 2026-12-25 Europe/Berlin (holiday: Christmas Day), outside business hours 09:00–18:00 Mon–Fri',
      );
      expect(finding?.evidence).toMatchObject({ holiday: true, holiday_date: '2026-12-25', holiday_name: 'Christmas Day' });
    });

    it('works for an unnamed holiday and only on that local date', () => {
      expect(judge('2026-05-01T12:00:00+02:00')?.reason).toContain('2026-05-01 Europe/Berlin (holiday), outside');
      expect(judge('2026-04-30T12:00:00+02:00')).toBeNull();
      // 23:30 UTC on 30 April is already 1 May in Berlin.
      expect(judge('2026-04-30T23:30:00Z')?.evidence).toMatchObject({ local_date: '2026-05-01', holiday: true });
    });

    it('is judged in the policy time zone, not UTC', () => {
      // 2026-05-01T23:30 UTC is 02 May 01:30 in Berlin (a Saturday anyway) but still 1 May in New York.
      const ny = judgeFor({ timezone: NEW_YORK, start: '00:00', end: '24:00', days: ['fri'], holidays: ['2026-05-01'] });
      expect(ny('2026-05-01T23:30:00Z')?.evidence).toMatchObject({ local_date: '2026-05-01', holiday: true });
      expect(ny('2026-05-01T03:30:00Z')?.evidence).toMatchObject({ local_date: '2026-04-30', weekday: 'thu', holiday: false });
    });
  });

  describe('overnight shift 22:00–06:00 Mon–Fri', () => {
    const config = { start: '22:00', end: '06:00', timezone: BERLIN, holidays: [{ date: '2026-06-19', name: 'Shift party' }] };
    const judge = judgeFor(config);

    it('is inside from start until midnight and after midnight until end', () => {
      expect(judge('2026-06-15T22:00:00+02:00')).toBeNull(); // Mon 22:00
      expect(judge('2026-06-16T05:59:00+02:00')).toBeNull(); // Tue 05:59, Monday's shift
      expect(judge('2026-06-16T06:00:00+02:00')).not.toBeNull();
      expect(judge('2026-06-16T21:59:00+02:00')).not.toBeNull();
      expect(judge('2026-06-16T12:00:00+02:00')).not.toBeNull();
    });

    it('counts the small hours for the day the shift started', () => {
      // Saturday 02:00 belongs to Friday's shift: inside.
      expect(judge('2026-06-13T02:00:00+02:00')).toBeNull();
      // Monday 02:00 belongs to Sunday's shift: outside.
      expect(judge('2026-06-15T02:00:00+02:00')?.evidence).toMatchObject({ weekday: 'mon', local_time: '02:00' });
      // Saturday 22:00 starts a Saturday shift: outside.
      expect(judge('2026-06-13T22:00:00+02:00')).not.toBeNull();
    });

    it('is off for the whole shift that starts on a holiday', () => {
      expect(judge('2026-06-19T23:00:00+02:00')?.evidence).toMatchObject({ holiday: true, holiday_date: '2026-06-19' });
      const finding = judge('2026-06-20T02:00:00+02:00');
      expect(finding?.evidence).toMatchObject({ local_date: '2026-06-20', weekday: 'sat', holiday: true, holiday_date: '2026-06-19' });
      expect(finding?.reason).toContain('02:00 Sat 2026-06-20 Europe/Berlin (in the shift of holiday 2026-06-19 Shift party)');
      // The Thursday shift ending on the holiday's morning is worked.
      expect(judge('2026-06-19T05:00:00+02:00')).toBeNull();
    });

    it('accepts 24:00 and 00:00 as the end of the day', () => {
      const times = ['2026-06-15T17:59:00+02:00', '2026-06-15T18:00:00+02:00', '2026-06-15T23:59:00+02:00', '2026-06-16T00:00:00+02:00'];
      expect(firesAt({ start: '18:00', end: '24:00', timezone: BERLIN }, times)).toEqual([true, false, false, true]);
      expect(firesAt({ start: '18:00', end: '00:00', timezone: BERLIN }, times)).toEqual([true, false, false, true]);
      const allDay = ['2026-06-15T00:00:00+02:00', '2026-06-15T23:59:59+02:00', '2026-06-14T12:00:00+02:00'];
      expect(firesAt({ start: '00:00', end: '24:00', timezone: BERLIN }, allDay)).toEqual([false, false, true]);
    });
  });

  describe('time zones', () => {
    it('judges one UTC instant inside hours in New York and outside in Tokyo', () => {
      const instant = '2026-06-10T14:00:00Z'; // 10:00 Wed in New York, 23:00 Wed in Tokyo
      expect(judgeFor({ timezone: NEW_YORK })(instant)).toBeNull();
      const tokyo = judgeFor({ timezone: TOKYO })(instant);
      expect(tokyo?.evidence).toMatchObject({ local_time: '23:00', local_date: '2026-06-10', weekday: 'wed', timezone: TOKYO, utc_offset: '+09:00' });
    });

    it("falls back to the document's time zone and lets the policy override it", () => {
      const instant = '2026-06-10T14:00:00Z';
      expect(judgeFor({}, NEW_YORK)(instant)).toBeNull();
      expect(judgeFor({}, TOKYO)(instant)?.evidence).toMatchObject({ timezone: TOKYO });
      expect(judgeFor({ timezone: NEW_YORK }, TOKYO)(instant)).toBeNull();
    });

    it('handles offsets that are not whole hours', () => {
      // 03:15 UTC is 09:00 in Kathmandu (+05:45) and 12:45 in Adelaide (+09:30 in June).
      const finding = judgeFor({ timezone: 'Asia/Kathmandu' })('2026-06-10T03:14:00Z');
      expect(finding?.evidence).toMatchObject({ local_time: '08:59', utc_offset: '+05:45' });
      expect(judgeFor({ timezone: 'Asia/Kathmandu' })('2026-06-10T03:15:00Z')).toBeNull();
      expect(judgeFor({ timezone: 'America/St_Johns' })('2026-06-10T11:29:00Z')?.evidence).toMatchObject({ local_time: '08:59', utc_offset: '-02:30' });
    });

    it('rejects an unknown document time zone at compile time', () => {
      expect(() => offHoursPolicy.compile(policyOf({}), { timezone: 'Mars/Olympus' })).toThrow(/unknown time zone "Mars\/Olympus"/);
    });
  });

  describe('daylight saving time', () => {
    it('Europe/Berlin spring-forward 2026-03-29: the next Monday is judged in CEST', () => {
      const judge = judgeFor({ timezone: BERLIN });
      // 08:30 CEST is 06:30 UTC; 09:00 CEST is 07:00 UTC (which would be 08:00 in CET).
      expect(judge('2026-03-30T06:30:00Z')?.evidence).toMatchObject({ local_time: '08:30', utc_offset: '+02:00' });
      expect(judge('2026-03-30T07:00:00Z')).toBeNull();
      expect(judge('2026-03-30T06:59:00Z')).not.toBeNull();
      expect(judge('2026-03-30T16:00:00Z')?.evidence).toMatchObject({ local_time: '18:00' });
    });

    it('Europe/Berlin spring-forward: one minute either side of 01:00 UTC', () => {
      // Hours 03:00–18:00 every day: 01:59 CET is outside, 03:00 CEST a minute later is inside.
      const judge = judgeFor({ start: '03:00', end: '18:00', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], timezone: BERLIN });
      expect(judge('2026-03-29T00:59:00Z')?.evidence).toMatchObject({ local_time: '01:59', utc_offset: '+01:00' });
      expect(judge('2026-03-29T01:00:00Z')).toBeNull();
      expect(judge('2026-03-29T01:01:00Z')).toBeNull();
    });

    it('Europe/Berlin fall-back 2026-10-25: the repeated hour is judged by its actual local time', () => {
      const judge = judgeFor({ start: '02:30', end: '18:00', days: ['sun'], timezone: BERLIN });
      const local = (t: string): string | undefined => judge(t)?.evidence.local_time as string | undefined;
      expect(local('2026-10-25T00:15:00Z')).toBe('02:15'); // first 02:15 (CEST): outside
      expect(judge('2026-10-25T00:45:00Z')).toBeNull(); // first 02:45 (CEST): inside
      expect(judge('2026-10-25T00:59:00Z')).toBeNull(); // 02:59 CEST: inside
      expect(judge('2026-10-25T01:00:00Z')?.evidence).toMatchObject({ local_time: '02:00', utc_offset: '+01:00' }); // clocks back
      expect(local('2026-10-25T01:15:00Z')).toBe('02:15'); // second 02:15 (CET): outside again
      expect(judge('2026-10-25T01:45:00Z')).toBeNull(); // second 02:45 (CET): inside
    });

    it('Europe/Berlin fall-back: the next Monday is judged in CET', () => {
      const judge = judgeFor({ timezone: BERLIN });
      expect(judge('2026-10-26T07:30:00Z')?.evidence).toMatchObject({ local_time: '08:30', utc_offset: '+01:00' });
      expect(judge('2026-10-26T07:59:00Z')).not.toBeNull();
      expect(judge('2026-10-26T08:00:00Z')).toBeNull();
      expect(judge('2026-10-26T16:59:00Z')).toBeNull();
      expect(judge('2026-10-26T17:00:00Z')).not.toBeNull();
    });

    it('America/New_York spring-forward 2026-03-08', () => {
      const hours = judgeFor({ timezone: NEW_YORK });
      expect(hours('2026-03-09T12:59:00Z')?.evidence).toMatchObject({ local_time: '08:59', utc_offset: '-04:00' });
      expect(hours('2026-03-09T13:00:00Z')).toBeNull();
      // Hours 01:00–03:00 daily: 01:59 EST is inside, the next minute is 03:00 EDT, outside.
      const edge = judgeFor({ start: '01:00', end: '03:00', days: ['sun'], timezone: NEW_YORK });
      expect(edge('2026-03-08T06:59:00Z')).toBeNull();
      expect(edge('2026-03-08T07:00:00Z')?.evidence).toMatchObject({ local_time: '03:00', utc_offset: '-04:00' });
    });

    it('America/New_York fall-back 2026-11-01', () => {
      const hours = judgeFor({ timezone: NEW_YORK });
      expect(hours('2026-11-02T13:59:00Z')?.evidence).toMatchObject({ local_time: '08:59', utc_offset: '-05:00' });
      expect(hours('2026-11-02T14:00:00Z')).toBeNull();
      // Hours 01:30–02:00 on Sundays: 01:59 EDT inside, 01:00 EST a minute later outside, 01:30 EST inside again.
      const edge = judgeFor({ start: '01:30', end: '02:00', days: ['sun'], timezone: NEW_YORK });
      expect(edge('2026-11-01T05:59:00Z')).toBeNull();
      expect(edge('2026-11-01T06:00:00Z')?.evidence).toMatchObject({ local_time: '01:00', utc_offset: '-05:00' });
      expect(edge('2026-11-01T06:30:00Z')).toBeNull();
      expect(edge('2026-11-01T07:00:00Z')).not.toBeNull();
    });
  });

  describe('the offset cache', () => {
    /** Instants (epoch ms) where the zone's offset changes in [from, to), found by scanning hours and bisecting to the millisecond. */
    function transitions(zoneName: string, from: string, to: string): number[] {
      const zone = IANAZone.create(zoneName);
      const found: number[] = [];
      const end = Date.parse(to);
      for (let t = Date.parse(from); t < end; t += 3_600_000) {
        if (zone.offset(t) === zone.offset(t + 3_600_000)) continue;
        let lo = t;
        let hi = t + 3_600_000;
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if (zone.offset(mid) === zone.offset(t)) lo = mid;
          else hi = mid;
        }
        found.push(hi);
      }
      return found;
    }

    /** Deterministic shuffle (mulberry32), so a failure reproduces. */
    function shuffled<T>(items: readonly T[], seed: number): T[] {
      let s = seed;
      const random = (): number => {
        s = (s + 0x6d2b79f5) | 0;
        let r = Math.imul(s ^ (s >>> 15), 1 | s);
        r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
        return ((r ^ (r >>> 14)) >>> 0) / 4_294_967_296;
      };
      const out = [...items];
      for (let i = out.length - 1; i > 0; i -= 1) {
        const j = Math.floor(random() * (i + 1));
        [out[i], out[j]] = [out[j] as T, out[i] as T];
      }
      return out;
    }

    const cases: ReadonlyArray<{ zone: string; from: string; to: string; count: number }> = [
      { zone: BERLIN, from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', count: 2 },
      { zone: NEW_YORK, from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', count: 2 },
      { zone: 'Australia/Lord_Howe', from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', count: 2 }, // 30-minute DST
      { zone: 'Pacific/Chatham', from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', count: 2 }, // +12:45/+13:45
      { zone: 'America/St_Johns', from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', count: 2 }, // −03:30/−02:30
      { zone: 'Asia/Kathmandu', from: '1985-06-01T00:00:00Z', to: '1986-06-01T00:00:00Z', count: 1 }, // +05:30 → +05:45
      { zone: 'Africa/Monrovia', from: '1971-06-01T00:00:00Z', to: '1972-06-01T00:00:00Z', count: 1 }, // −00:44:30 → 00:00, mid-slice
    ];

    it.each(cases)('agrees with luxon around every transition of $zone', ({ zone, from, to, count }) => {
      const changes = transitions(zone, from, to);
      expect(changes).toHaveLength(count);
      const instants: number[] = [];
      for (const change of changes) {
        for (let m = -180; m <= 180; m += 1) instants.push(change + m * 60_000);
        for (const d of [-1000, -1, 0, 1, 1000]) instants.push(change + d);
      }
      const clock = new ZoneClock(zone);
      // Sorted, reversed and shuffled orders warm the cache differently; all must agree.
      for (const order of [instants, [...instants].reverse(), shuffled(instants, 42)]) {
        for (const ms of order) {
          const expected = DateTime.fromMillis(ms, { zone });
          const wall = DateTime.fromMillis(clock.wallMs(ms), { zone: 'UTC' });
          expect(wall.toFormat('yyyy-MM-dd HH:mm:ss'), `${zone} at ${new Date(ms).toISOString()}`).toBe(
            expected.toFormat('yyyy-MM-dd HH:mm:ss'),
          );
        }
      }
    });

    it('gives every decision around DST changes the same answer as a reference built on luxon', () => {
      const configs = [
        { start: '01:30', end: '02:30', days: ['sat', 'sun'] },
        { start: '22:00', end: '06:00', days: ['fri', 'sat', 'sun', 'mon'], holidays: ['2026-03-29', '2026-10-24'] },
        { start: '02:15', end: '03:00', days: ['sun'], holidays: ['2026-11-01'] },
      ] as const;
      for (const zone of [BERLIN, NEW_YORK, 'Australia/Lord_Howe']) {
        for (const raw of configs) {
          const config = OffHoursConfigSchema.parse({ ...raw, timezone: zone });
          const judge = judgeFor({ ...raw, timezone: zone });
          const start = Number(config.start.slice(0, 2)) * 60 + Number(config.start.slice(3));
          const end = Number(config.end.slice(0, 2)) * 60 + Number(config.end.slice(3));
          const holidays = new Set(config.holidays.map((h) => (typeof h === 'string' ? h : h.date)));
          const works = (day: DateTime): boolean => config.days.includes(day.toFormat('ccc').toLowerCase() as 'mon') && !holidays.has(day.toISODate() ?? '');
          const reference = (ms: number): boolean => {
            const local = DateTime.fromMillis(ms, { zone });
            const minute = local.hour * 60 + local.minute;
            const day = local.startOf('day');
            if (start < end) return minute >= start && minute < end && works(day);
            if (minute >= start) return works(day);
            if (minute < end) return works(day.minus({ days: 1 }));
            return false;
          };
          // Every minute within 3 h of each change, then every 13 min out to 26 h (overnight shifts reach back a day).
          const instants = transitions(zone, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z').flatMap((change) => {
            const minutes: number[] = [];
            for (let m = -26 * 60; m <= 26 * 60; m += Math.abs(m) <= 180 ? 1 : 13) minutes.push(m);
            return minutes.map((m) => change + m * 60_000 + 17_000);
          });
          for (const ms of shuffled(instants, 7)) {
            const inside = judge(ms) === null;
            expect(inside, `${zone} ${config.start}–${config.end} at ${new Date(ms).toISOString()}`).toBe(reference(ms));
          }
        }
      }
    });

    it('stays bounded however many distinct slices it sees', () => {
      const clock = new ZoneClock(BERLIN);
      const base = Date.parse('2026-01-01T00:00:00Z');
      for (let i = 0; i < 5000; i += 1) clock.wallMs(base + i * 15 * 60_000);
      expect(clock.cachedSlices).toBeLessThanOrEqual(1024);
      expect(clock.cachedSlices).toBeGreaterThan(0);
      // Early slices were evicted; asking again still gives the right answer.
      expect(clock.wallMs(base) - base).toBe(3_600_000);
    });
  });

  describe('config', () => {
    it('fills in the documented defaults', () => {
      expect(OffHoursConfigSchema.parse({})).toEqual({
        start: '09:00',
        end: '18:00',
        days: ['mon', 'tue', 'wed', 'thu', 'fri'],
        holidays: [],
      });
    });

    it('dedupes days and puts them in week order', () => {
      expect(OffHoursConfigSchema.parse({ days: ['fri', 'mon', 'fri', 'wed'] }).days).toEqual(['mon', 'wed', 'fri']);
    });

    it('accepts leap days, overnight shifts and 24:00 as end', () => {
      expect(OffHoursConfigSchema.safeParse({ holidays: ['2024-02-29'] }).success).toBe(true);
      expect(OffHoursConfigSchema.safeParse({ start: '22:00', end: '06:00' }).success).toBe(true);
      expect(OffHoursConfigSchema.safeParse({ start: '00:00', end: '24:00' }).success).toBe(true);
    });

    const bad: ReadonlyArray<{ name: string; config: Record<string, unknown>; path: PropertyKey[]; message: RegExp }> = [
      { name: 'an hour past 23', config: { start: '25:00' }, path: ['start'], message: /HH:MM/ },
      { name: 'a single-digit hour', config: { start: '9:00' }, path: ['start'], message: /HH:MM/ },
      { name: '24:00 as start', config: { start: '24:00' }, path: ['start'], message: /00:00 to 23:59/ },
      { name: 'end past 24:00', config: { end: '24:30' }, path: ['end'], message: /HH:MM/ },
      { name: 'start equal to end', config: { start: '09:00', end: '09:00' }, path: ['end'], message: /must differ from start \(09:00\)/ },
      { name: 'an unknown day', config: { days: ['funday'] }, path: ['days', 0], message: /mon, tue/ },
      { name: 'no days', config: { days: [] }, path: ['days'], message: /at least one/ },
      { name: 'a date that does not exist', config: { holidays: ['2026-02-30'] }, path: ['holidays', 0], message: /2026-02-30 is not a calendar date/ },
      { name: 'a malformed date', config: { holidays: ['25.12.2026'] }, path: ['holidays', 0], message: /YYYY-MM-DD/ },
      { name: 'a holiday object with a bad date', config: { holidays: [{ date: '2026-13-01' }] }, path: ['holidays', 0, 'date'], message: /not a calendar date/ },
      { name: 'a holiday of the wrong type', config: { holidays: [20261225] }, path: ['holidays', 0], message: /YYYY-MM-DD/ },
      { name: 'an unknown time zone', config: { timezone: 'Mars/Olympus' }, path: ['timezone'], message: /IANA time zone/ },
      { name: 'an unknown key', config: { start_time: '09:00' }, path: [], message: /start_time/ },
    ];

    it.each(bad)('rejects $name, naming the path', ({ config, path, message }) => {
      const result = offHoursPolicy.configSchema.safeParse(config);
      expect(result.success).toBe(false);
      const issue = result.error?.issues[0];
      expect(issue?.path).toEqual(path);
      expect(issue?.message).toMatch(message);
    });

    it('reports bad config through the policy document parser as policies[i].config.<path>', () => {
      const doc = (config: Record<string, unknown>): unknown => ({
        version: 1,
        timezone: BERLIN,
        policies: [{ id: 'after-hours', type: 'off_hours', config }],
      });
      const paths = (config: Record<string, unknown>): string[] => {
        const result = parsePolicyDocument(doc(config), schemas);
        return result.ok ? [] : result.problems.map((p) => p.path);
      };
      expect(paths({ start: '25:00' })).toEqual(['policies[0].config.start']);
      expect(paths({ days: ['mon', 'funday'] })).toEqual(['policies[0].config.days[1]']);
      expect(paths({ holidays: ['2026-12-25', '2026-02-30'] })).toEqual(['policies[0].config.holidays[1]']);
      expect(paths({ timezone: 'Mars/Olympus' })).toEqual(['policies[0].config.timezone']);
      expect(paths({ start: '09:00', end: '09:00' })).toEqual(['policies[0].config.end']);
      const unknownKey = parsePolicyDocument(doc({ weekend: true }), schemas);
      expect(unknownKey.ok).toBe(false);
      if (!unknownKey.ok) expect(unknownKey.problems[0]).toEqual({ path: 'policies[0].config', message: 'Unrecognized key: "weekend"' });
    });

    it('compiles a parsed document and judges in its time zone', () => {
      const result = parsePolicyDocument(
        { version: 1, timezone: TOKYO, policies: [{ id: 'after-hours', type: 'off_hours', config: { holidays: ['2026-06-10'] } }] },
        schemas,
      );
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      const policy = result.document.policies[0] as ValidatedPolicy<OffHoursConfig>;
      const compiled = offHoursPolicy.compile(policy, { timezone: result.document.timezone });
      expect(offHoursPolicy.decide(eventAt('2026-06-11T01:00:00Z'), [], compiled, policy)).toBeNull(); // Thu 10:00 Tokyo
      expect(offHoursPolicy.decide(eventAt('2026-06-10T01:00:00Z'), [], compiled, policy)?.evidence).toMatchObject({ holiday: true, timezone: TOKYO });
    });
  });
});
