import { describe, expect, it } from 'vitest';
import { cronIn, customPeriod, dueAt, nextPeriod, parseTimeArgument, periodContaining, periodsOverlapping, previousPeriod } from './periods.js';

const HOUR = 3_600_000;
const BERLIN = 'Europe/Berlin';

describe('periodContaining', () => {
  it('cuts days at local midnight: the spring DST day is 23 hours, the autumn one 25', () => {
    const spring = periodContaining(Date.parse('2026-03-29T12:00:00Z'), 'daily', BERLIN);
    expect(spring).toMatchObject({ id: '2026-03-29', from: Date.parse('2026-03-28T23:00:00Z'), to: Date.parse('2026-03-29T22:00:00Z') });
    expect(spring.to - spring.from).toBe(23 * HOUR);
    const autumn = periodContaining(Date.parse('2026-10-25T12:00:00Z'), 'daily', BERLIN);
    expect(autumn).toMatchObject({ id: '2026-10-25', from: Date.parse('2026-10-24T22:00:00Z'), to: Date.parse('2026-10-25T23:00:00Z') });
    expect(autumn.to - autumn.from).toBe(25 * HOUR);
  });

  it('uses ISO weeks (Monday first, ISO week-year) and calendar months', () => {
    const week = periodContaining(Date.parse('2026-10-25T12:00:00Z'), 'weekly', BERLIN);
    expect(week).toMatchObject({ id: '2026-W43', from: Date.parse('2026-10-18T22:00:00Z'), to: Date.parse('2026-10-25T23:00:00Z') });
    expect(week.to - week.from).toBe(7 * 24 * HOUR + HOUR);
    // 2027-01-01 is a Friday of ISO week 2026-W53.
    expect(periodContaining(Date.parse('2027-01-01T12:00:00Z'), 'weekly', 'UTC').id).toBe('2026-W53');
    const month = periodContaining(Date.parse('2026-11-23T12:00:00Z'), 'monthly', BERLIN);
    expect(month).toMatchObject({ id: '2026-11', from: Date.parse('2026-10-31T23:00:00Z'), to: Date.parse('2026-11-30T23:00:00Z') });
  });

  it('steps to the next and previous periods without gaps or overlaps', () => {
    let p = periodContaining(Date.parse('2026-03-27T12:00:00Z'), 'daily', BERLIN);
    for (let i = 0; i < 5; i++) {
      const next = nextPeriod(p);
      expect(next.from).toBe(p.to);
      expect(previousPeriod(next)).toEqual(p);
      p = next;
    }
    expect(p.id).toBe('2026-04-01');
  });
});

describe('dueAt', () => {
  it('is the first cron firing at or after the period end, in the zone', () => {
    const day = periodContaining(Date.parse('2026-03-29T12:00:00Z'), 'daily', BERLIN);
    expect(dueAt(day, cronIn('15 0 * * *', BERLIN))).toBe(Date.parse('2026-03-29T22:15:00Z'));
    // A firing exactly at the end counts.
    expect(dueAt(day, cronIn('0 0 * * *', BERLIN))).toBe(day.to);
    const week = periodContaining(Date.parse('2026-10-25T12:00:00Z'), 'weekly', BERLIN);
    expect(dueAt(week, cronIn('15 0 * * 1', BERLIN))).toBe(Date.parse('2026-10-25T23:15:00Z'));
  });
});

describe('custom ranges', () => {
  it('names a range by its bounds: dates at local midnight, UTC timestamps otherwise', () => {
    expect(customPeriod(Date.parse('2026-11-01T00:00:00Z'), Date.parse('2026-11-08T00:00:00Z'), 'UTC').id).toBe('2026-11-01_2026-11-08');
    expect(customPeriod(Date.parse('2026-11-01T06:30:00Z'), Date.parse('2026-11-02T00:00:00Z'), 'UTC').id).toBe('20261101T063000000Z_2026-11-02');
    expect(() => customPeriod(5, 5, 'UTC')).toThrow(/non-empty/);
  });

  it('lists the whole periods overlapping a range', () => {
    const ids = periodsOverlapping(Date.parse('2026-11-29T12:00:00Z'), Date.parse('2026-12-02T00:00:00Z'), 'daily', 'UTC').map((p) => p.id);
    expect(ids).toEqual(['2026-11-29', '2026-11-30', '2026-12-01']);
  });

  it('parses dates in the zone and ISO date-times with offsets', () => {
    expect(parseTimeArgument('2026-11-23', BERLIN, '--from')).toBe(Date.parse('2026-11-22T23:00:00Z'));
    expect(parseTimeArgument('2026-11-23T06:00', BERLIN, '--from')).toBe(Date.parse('2026-11-23T05:00:00Z'));
    expect(parseTimeArgument('2026-11-23T06:00:00Z', BERLIN, '--from')).toBe(Date.parse('2026-11-23T06:00:00Z'));
    expect(() => parseTimeArgument('yesterday', 'UTC', '--from')).toThrow(/--from: expected a date/);
  });
});
