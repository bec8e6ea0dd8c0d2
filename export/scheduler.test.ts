import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../test/support/fake-clock.js';
import { ExportScheduleSchema, type ExportSchedule } from './config.js';
import type { Period } from './periods.js';
import { ExportScheduler } from './scheduler.js';

const BERLIN = 'Europe/Berlin';
const HOUR = 3_600_000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'aw-export-sched-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function schedule(input: Record<string, unknown>): ExportSchedule {
  return ExportScheduleSchema.parse(input);
}

interface Harness {
  scheduler: ExportScheduler;
  clock: FakeClock;
  exported: { period: Period; tenant: string }[];
  failFor: Set<string>;
}

function harness(schedules: ExportSchedule[], now: string, options: { tenants?: string[]; maxCatchUp?: number } = {}): Harness {
  const clock = new FakeClock(Date.parse(now));
  const exported: Harness['exported'] = [];
  const failFor = new Set<string>();
  const scheduler = new ExportScheduler({
    schedules,
    stateFile: path.join(dir, '.schedule-state.json'),
    clock,
    ...(options.maxCatchUp === undefined ? {} : { maxCatchUp: options.maxCatchUp }),
    listTenants: async () => options.tenants ?? ['acme'],
    exportTenant: async (period, tenant) => {
      if (failFor.has(`${period.id}/${tenant}`)) throw new Error(`disk full for ${tenant}`);
      exported.push({ period, tenant });
    },
  });
  return { scheduler, clock, exported, failFor };
}

const ids = (h: Harness): string[] => h.exported.map((e) => `${e.period.id}/${e.tenant}`);

describe('ExportScheduler', () => {
  it('exports each Berlin day at 00:15 local time across the spring DST change (a 23-hour day)', async () => {
    const daily = schedule({ name: 'daily', period: 'daily', timezone: BERLIN });
    // 2026-03-29 00:20 Berlin (CET, +01:00): the 28th is due.
    const h = harness([daily], '2026-03-28T23:20:00Z');
    h.scheduler.start();
    await h.clock.advanceTo(h.clock.time, () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-03-28/acme']);

    // The 29th has 23 hours and is due at 00:15 CEST on the 30th = 22:15Z.
    expect(h.scheduler.nextDueAt()).toBe(Date.parse('2026-03-29T22:15:00Z'));
    await h.clock.advanceTo(Date.parse('2026-03-29T22:14:59Z'), () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-03-28/acme']);
    await h.clock.advanceTo(Date.parse('2026-03-29T22:15:00Z'), () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-03-28/acme', '2026-03-29/acme']);
    const day = h.exported[1]?.period;
    expect(day).toMatchObject({ from: Date.parse('2026-03-28T23:00:00Z'), to: Date.parse('2026-03-29T22:00:00Z') });
    expect((day?.to ?? 0) - (day?.from ?? 0)).toBe(23 * HOUR);
    await h.scheduler.stop();
    expect(h.clock.nextTimerAt()).toBeNull();
  });

  it('exports Berlin ISO weeks on Monday 00:15 across the autumn DST change (a 169-hour week)', async () => {
    const weekly = schedule({ name: 'weekly', period: 'weekly', timezone: BERLIN });
    const h = harness([weekly], '2026-10-20T12:00:00Z');
    h.scheduler.start();
    await h.clock.advanceTo(h.clock.time, () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-W42/acme']);
    await h.clock.advanceTo(Date.parse('2026-10-25T23:14:00Z'), () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-W42/acme']);
    await h.clock.advanceTo(Date.parse('2026-10-25T23:15:00Z'), () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-W42/acme', '2026-W43/acme']);
    const week = h.exported[1]?.period;
    expect((week?.to ?? 0) - (week?.from ?? 0)).toBe(169 * HOUR);
    await h.scheduler.stop();
  });

  it('catches up every period missed while down, oldest first, and monthly after the daily of its last day', async () => {
    const daily = schedule({ name: 'daily', period: 'daily', timezone: BERLIN });
    const monthly = schedule({ name: 'monthly', period: 'monthly', timezone: BERLIN });
    const first = harness([daily, monthly], '2026-03-28T23:20:00Z');
    await first.scheduler.runDue();
    expect(ids(first)).toEqual(['2026-02/acme', '2026-03-28/acme']);

    // Down from the 29th until 2026-04-02 09:00 Berlin.
    const second = harness([daily, monthly], '2026-04-02T07:00:00Z');
    second.scheduler.start();
    await second.clock.advanceTo(second.clock.time, () => second.scheduler.idle());
    expect(ids(second)).toEqual(['2026-03-29/acme', '2026-03-30/acme', '2026-03-31/acme', '2026-03/acme', '2026-04-01/acme']);
    await second.scheduler.stop();

    const state = JSON.parse(readFileSync(path.join(dir, '.schedule-state.json'), 'utf8')) as { schedules: Record<string, { last_completed: { id: string } }> };
    expect(state.schedules.daily?.last_completed.id).toBe('2026-04-01');
    expect(state.schedules.monthly?.last_completed.id).toBe('2026-03');

    // Nothing runs twice.
    const third = harness([daily, monthly], '2026-04-02T07:30:00Z');
    await third.scheduler.runDue();
    expect(ids(third)).toEqual([]);
  });

  it('retries a failed tenant without repeating the tenants done, and holds later periods back', async () => {
    const daily = schedule({ name: 'daily', period: 'daily', timezone: 'UTC' });
    const h = harness([daily], '2026-11-20T01:00:00Z', { tenants: ['a', 'b', 'c'] });
    await h.scheduler.runDue();
    h.exported.length = 0;
    h.failFor.add('2026-11-20/b');
    h.clock.time = Date.parse('2026-11-22T01:00:00Z');
    const runs = await h.scheduler.runDue();
    expect(runs.map((r) => [r.period.id, r.tenants, r.error === undefined])).toEqual([['2026-11-20', ['a'], false]]);
    expect(ids(h)).toEqual(['2026-11-20/a']);

    h.failFor.clear();
    await h.scheduler.runDue();
    expect(ids(h)).toEqual(['2026-11-20/a', '2026-11-20/b', '2026-11-20/c', '2026-11-21/a', '2026-11-21/b', '2026-11-21/c']);
  });

  it('retries under the timer after 30 s, doubling per failure, and back on schedule once it succeeds', async () => {
    const daily = schedule({ name: 'daily', period: 'daily', timezone: 'UTC' });
    const h = harness([daily], '2026-11-20T01:00:00Z');
    h.failFor.add('2026-11-19/acme');
    h.scheduler.start();
    await h.clock.advanceTo(h.clock.time, () => h.scheduler.idle());
    expect(ids(h)).toEqual([]);
    expect(h.clock.nextTimerAt()).toBe(Date.parse('2026-11-20T01:00:30Z'));
    await h.clock.advanceTo(Date.parse('2026-11-20T01:00:30Z'), () => h.scheduler.idle());
    expect(h.clock.nextTimerAt()).toBe(Date.parse('2026-11-20T01:01:30Z'));
    expect(h.scheduler.failures()).toMatchObject([{ schedule: 'daily', period: '2026-11-19', tenant: 'acme', attempts: 2 }]);
    h.failFor.clear();
    await h.clock.advanceTo(Date.parse('2026-11-20T01:01:30Z'), () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-11-19/acme']);
    expect(h.scheduler.failures()).toEqual([]);
    expect(h.clock.nextTimerAt()).toBe(Date.parse('2026-11-20T02:01:30Z'));
    await h.scheduler.stop();
  });

  it('a failing schedule waits out its backoff while another schedule runs on time', async () => {
    const daily = schedule({ name: 'daily', period: 'daily', timezone: 'UTC' });
    const weekly = schedule({ name: 'weekly', period: 'weekly', timezone: 'UTC' });
    // Sunday 2026-11-22 23:59:50: the 21st's daily fails; the week ends 10 s later and is due at 00:15.
    const h = harness([daily, weekly], '2026-11-22T23:59:50Z');
    h.failFor.add('2026-11-21/acme');
    h.scheduler.start();
    await h.clock.advanceTo(h.clock.time, () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-W46/acme']);
    // Retries at 00:00:20, 00:01:20, 00:03:20, 00:07:20, each failing, then 00:15:20;
    // the week is exported at 00:15 without an early retry of the daily.
    h.exported.length = 0;
    await h.clock.advanceTo(Date.parse('2026-11-23T00:15:00Z'), () => h.scheduler.idle());
    expect(ids(h)).toEqual(['2026-W47/acme']);
    expect(h.scheduler.failures()).toMatchObject([{ schedule: 'daily', period: '2026-11-21', attempts: 5, retryAt: Date.parse('2026-11-23T00:15:20Z') }]);
    const retryAt = h.scheduler.failures()[0]?.retryAt ?? 0;
    expect(retryAt).toBeGreaterThan(Date.parse('2026-11-23T00:15:00Z'));
    expect(h.clock.nextTimerAt()).toBe(retryAt);
    await h.scheduler.stop();
  });

  it('skips the oldest missed periods beyond max_catch_up', async () => {
    const daily = schedule({ name: 'daily', period: 'daily', timezone: 'UTC' });
    await harness([daily], '2026-11-01T01:00:00Z').scheduler.runDue();
    const h = harness([daily], '2026-11-11T01:00:00Z', { maxCatchUp: 3 });
    await h.scheduler.runDue();
    expect(ids(h)).toEqual(['2026-11-08/acme', '2026-11-09/acme', '2026-11-10/acme']);
  });
});
