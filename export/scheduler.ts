import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { scheduleCron, type ExportSchedule } from './config.js';
import { ExportError } from './errors.js';
import type { ExportLogger } from './exporter.js';
import { cronIn, dueAt, nextPeriod, periodContaining, previousPeriod, type CalendarPeriod, type Period } from './periods.js';

/** Time and timers of the scheduler; tests pass a fake one. */
export interface SchedulerClock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const timer = setTimeout(run, ms);
    // A pending export check must not keep a stopping process alive.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Options of {@link ExportScheduler}. */
export interface ExportSchedulerOptions {
  schedules: readonly ExportSchedule[];
  /** JSON file recording, per schedule, the last period completed and each tenant's last exported period. */
  stateFile: string;
  /** Missed periods caught up per schedule, at most (the oldest are skipped with a warning). @default 400 */
  maxCatchUp?: number;
  /** Tenants to export for a period. */
  listTenants(period: Period): Promise<string[]>;
  /** Exports one tenant's period; must be idempotent (a crash may repeat it). */
  exportTenant(period: Period, tenant: string): Promise<void>;
  logger?: ExportLogger;
  clock?: SchedulerClock;
  /** Longest sleep between checks, so a changed wall clock or a long month is re-read. @default 3600000 */
  maxSleepMs?: number;
  /** Wait before retrying after a failed export. @default 300000 */
  retryDelayMs?: number;
}

const ScheduleStateSchema = z.object({
  period: z.enum(['daily', 'weekly', 'monthly']),
  timezone: z.string(),
  last_completed: z.object({ id: z.string(), from: z.number(), to: z.number() }).nullable(),
  /** Tenant → the newest period exported for it (a period in progress may have some tenants done). */
  tenants: z.record(z.string(), z.object({ id: z.string(), to: z.number() })),
});
type ScheduleState = z.output<typeof ScheduleStateSchema>;
const StateSchema = z.object({ version: z.literal(1), schedules: z.record(z.string(), ScheduleStateSchema) });
type State = z.output<typeof StateSchema>;

/** One period exported (or attempted) by a run. */
export interface ScheduledExport {
  schedule: string;
  period: Period;
  tenants: string[];
  error?: unknown;
}

/**
 * Runs export schedules: each period is exported at the first cron firing at
 * or after its end (in the schedule's zone). Progress is kept in a state
 * file, so periods missed while the process was down are exported at start,
 * oldest first; a first start exports only the latest due period (backfill
 * older ones with `agentwatch export run`). Within a run, due periods of all
 * schedules go in order of end time, so every chain grows at its end.
 */
export class ExportScheduler {
  readonly #options: ExportSchedulerOptions;
  readonly #clock: SchedulerClock;
  #timer: unknown = null;
  #running: Promise<ScheduledExport[]> | null = null;
  #stopped = true;
  #stopRequested = false;

  constructor(options: ExportSchedulerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Starts: catches up at once (in the background), then sleeps until the next period is due. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#stopRequested = false;
    this.#arm(0);
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopRequested = true;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    await this.idle();
  }

  /** Resolves when no run is in progress. */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running.catch(() => undefined);
  }

  /** Exports every period due now that the state file does not record as done; the timer calls this. */
  runDue(): Promise<ScheduledExport[]> {
    if (this.#running !== null) return this.#running;
    const run = this.#runDue().finally(() => {
      this.#running = null;
    });
    this.#running = run;
    return run;
  }

  /** When the next not-yet-exported period of any schedule is due (Infinity: never). */
  nextDueAt(): number {
    const state = this.#readState();
    let next = Number.POSITIVE_INFINITY;
    for (const schedule of this.#options.schedules) {
      next = Math.min(next, dueAt(this.#firstPending(schedule, state, this.#clock.now()), cronIn(scheduleCron(schedule), schedule.timezone)));
    }
    return next;
  }

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      void this.runDue().then(
        (runs) => {
          // A failed period stays due: wait the retry delay rather than spin on it.
          const failed = runs.some((r) => r.error !== undefined);
          const untilDue = this.nextDueAt() - this.#clock.now();
          this.#arm(failed ? (this.#options.retryDelayMs ?? 300_000) : Math.min(Math.max(untilDue, 0), this.#options.maxSleepMs ?? 3_600_000));
        },
        (error: unknown) => {
          this.#options.logger?.error({ err: error }, 'export scheduler failed; retrying later');
          this.#arm(this.#options.retryDelayMs ?? 300_000);
        },
      );
    }, delayMs);
  }

  async #runDue(): Promise<ScheduledExport[]> {
    const { logger } = this.#options;
    const now = this.#clock.now();
    const state = this.#readState();
    const due: { schedule: ExportSchedule; period: CalendarPeriod }[] = [];
    for (const schedule of this.#options.schedules) {
      const cron = cronIn(scheduleCron(schedule), schedule.timezone);
      let periods: CalendarPeriod[] = [];
      for (let p = this.#firstPending(schedule, state, now); dueAt(p, cron) <= now; p = nextPeriod(p)) periods.push(p);
      const max = this.#options.maxCatchUp ?? 400;
      if (periods.length > max) {
        const skipped = periods.slice(0, periods.length - max);
        logger?.warn(
          { schedule: schedule.name, skipped: skipped.length, first: skipped[0]?.id, last: skipped[skipped.length - 1]?.id },
          'more missed periods than export.max_catch_up: skipping the oldest (backfill them with `agentwatch export run`)',
        );
        periods = periods.slice(-max);
      }
      if (periods.length > 1) logger?.info({ schedule: schedule.name, periods: periods.length, first: periods[0]?.id }, 'catching up missed exports');
      for (const period of periods) due.push({ schedule, period });
    }
    // By end time, and the longer period last when two end together (the
    // month after its last day), so each chain only ever grows at its end.
    due.sort((a, b) => a.period.to - b.period.to || b.period.from - a.period.from || (a.schedule.name < b.schedule.name ? -1 : 1));

    const runs: ScheduledExport[] = [];
    const failed = new Set<string>();
    for (const { schedule, period } of due) {
      if (this.#stopRequested) break;
      if (failed.has(schedule.name)) continue;
      const run: ScheduledExport = { schedule: schedule.name, period, tenants: [] };
      runs.push(run);
      try {
        const entry = scheduleState(state, schedule);
        for (const tenant of await this.#options.listTenants(period)) {
          const done = entry.tenants[tenant];
          if (done !== undefined && done.to >= period.to) continue;
          await this.#options.exportTenant(period, tenant);
          entry.tenants[tenant] = { id: period.id, to: period.to };
          run.tenants.push(tenant);
          this.#writeState(state);
        }
        entry.last_completed = { id: period.id, from: period.from, to: period.to };
        this.#writeState(state);
        logger?.info({ schedule: schedule.name, period: period.id, tenants: run.tenants.length }, 'scheduled export completed');
      } catch (error) {
        run.error = error;
        failed.add(schedule.name);
        logger?.error({ err: error, schedule: schedule.name, period: period.id }, 'scheduled export failed; will retry');
      }
    }
    return runs;
  }

  /** The oldest period of `schedule` not recorded as completed. */
  #firstPending(schedule: ExportSchedule, state: State, now: number): CalendarPeriod {
    const entry = state.schedules[schedule.name];
    const last = entry === undefined || entry.period !== schedule.period || entry.timezone !== schedule.timezone ? null : entry.last_completed;
    if (last !== null) {
      const p = periodContaining(last.to, schedule.period, schedule.timezone);
      return p.from < last.to ? nextPeriod(p) : p;
    }
    // First start (or the schedule's period or zone changed): only the latest due period.
    const cron = cronIn(scheduleCron(schedule), schedule.timezone);
    const justEnded = previousPeriod(periodContaining(now, schedule.period, schedule.timezone));
    return dueAt(justEnded, cron) <= now ? justEnded : previousPeriod(justEnded);
  }

  #readState(): State {
    let text: string;
    try {
      text = readFileSync(this.#options.stateFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, schedules: {} };
      throw new ExportError('AW_EXPORT_BAD_STATE', `cannot read export schedule state ${this.#options.stateFile}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return StateSchema.parse(JSON.parse(text));
    } catch (error) {
      throw new ExportError('AW_EXPORT_BAD_STATE', `export schedule state ${this.#options.stateFile} is not one agentwatch wrote; move it away to start over (the next start exports the latest period only)`, { cause: error });
    }
  }

  /** Write-then-rename: a crash leaves the old state or the new, never half of one. */
  #writeState(state: State): void {
    const file = this.#options.stateFile;
    mkdirSync(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(temp, file);
  }
}

function scheduleState(state: State, schedule: ExportSchedule): ScheduleState {
  const existing = state.schedules[schedule.name];
  if (existing !== undefined && existing.period === schedule.period && existing.timezone === schedule.timezone) return existing;
  const fresh: ScheduleState = { period: schedule.period, timezone: schedule.timezone, last_completed: null, tenants: {} };
  state.schedules[schedule.name] = fresh;
  return fresh;
}

/** Name of the state file in the export directory. */
export const SCHEDULE_STATE_FILE = '.schedule-state.json';
