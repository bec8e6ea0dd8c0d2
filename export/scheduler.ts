import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { scheduleCron, type ExportSchedule } from './config.js';
import { AgentwatchError } from '../core/errors.js';
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
  /**
   * Wait before the timer retries a schedule whose export failed; doubles
   * with each further failure of the same period, up to `maxRetryDelayMs`.
   * @default 30000
   */
  retryDelayMs?: number;
  /** Longest wait between two retries. @default 900000 */
  maxRetryDelayMs?: number;
}

/** A schedule whose oldest pending period keeps failing (see {@link ExportScheduler.failures}). */
export interface ScheduleFailure {
  schedule: string;
  /** The period being retried; the later periods of the schedule wait behind it, so its chain stays in order. */
  period: string;
  /** The tenant whose export failed; null when it failed before any tenant (listing them). */
  tenant: string | null;
  /** Failed attempts in a row. */
  attempts: number;
  /** When the first of them failed (epoch ms). */
  since: number;
  /** When the timer tries again (epoch ms). */
  retryAt: number;
  /** The error's code, e.g. `AW_EXPORT_WRITE_FAILED`. */
  code?: string;
  /** The system error behind it, e.g. `ENOSPC`. */
  errno?: string;
  message: string;
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
  /** Schedules failing now, by name. */
  readonly #failures = new Map<string, ScheduleFailure>();
  /** Runs in a row that failed as a whole (the state file unreadable). */
  #runFailures = 0;
  /** Failed export attempts since start, of every schedule (for /metrics). */
  #failedAttempts = 0;

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

  /**
   * Exports every period due now that the state file does not record as
   * done, failing ones included (the timer waits out their backoff).
   */
  runDue(): Promise<ScheduledExport[]> {
    return this.#run(false);
  }

  /** The schedules whose oldest pending period keeps failing, with when it is retried: empty when all is well. */
  failures(): ScheduleFailure[] {
    return [...this.#failures.values()].map((failure) => ({ ...failure }));
  }

  /** Failed export attempts since start, over all schedules (each retry that fails counts). */
  failedAttempts(): number {
    return this.#failedAttempts;
  }

  #run(honourBackoff: boolean): Promise<ScheduledExport[]> {
    if (this.#running !== null) return this.#running;
    const run = this.#runDue(honourBackoff).finally(() => {
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
      void this.#runFromTimer();
    }, delayMs);
  }

  async #runFromTimer(): Promise<void> {
    let delayMs: number;
    try {
      await this.#run(true);
      delayMs = this.#untilNextWake();
      this.#runFailures = 0;
    } catch (error) {
      // The state file cannot be read (or written before any export): nothing runs until it can.
      delayMs = this.#retryDelay(++this.#runFailures);
      this.#options.logger?.error({ err: error, attempt: this.#runFailures, retry_in_ms: delayMs }, 'export scheduler failed; retrying later');
    }
    this.#arm(delayMs);
  }

  /** Until the next period is due or a failing schedule's retry, at most the longest sleep. */
  #untilNextWake(): number {
    const now = this.#clock.now();
    const state = this.#readState();
    let next = Number.POSITIVE_INFINITY;
    for (const schedule of this.#options.schedules) {
      // A failing schedule's pending period is overdue: its retry time is what counts.
      const wake = this.#failures.get(schedule.name)?.retryAt ?? dueAt(this.#firstPending(schedule, state, now), cronIn(scheduleCron(schedule), schedule.timezone));
      next = Math.min(next, wake);
    }
    return Math.min(Math.max(next - now, 0), this.#options.maxSleepMs ?? 3_600_000);
  }

  /** Wait after the `attempts`-th failure in a row: the retry delay, doubled per failure, capped. */
  #retryDelay(attempts: number): number {
    const first = this.#options.retryDelayMs ?? 30_000;
    return Math.min(first * 2 ** Math.min(attempts - 1, 52), this.#options.maxRetryDelayMs ?? 900_000);
  }

  async #runDue(honourBackoff: boolean): Promise<ScheduledExport[]> {
    const { logger } = this.#options;
    const now = this.#clock.now();
    const state = this.#readState();
    const due: { schedule: ExportSchedule; period: CalendarPeriod }[] = [];
    for (const schedule of this.#options.schedules) {
      // Its backoff has not run out (the timer woke for another schedule).
      if (honourBackoff && (this.#failures.get(schedule.name)?.retryAt ?? now) > now) continue;
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
      let current: string | null = null;
      try {
        const entry = scheduleState(state, schedule);
        for (const tenant of await this.#options.listTenants(period)) {
          const done = entry.tenants[tenant];
          if (done !== undefined && done.to >= period.to) continue;
          current = tenant;
          await this.#options.exportTenant(period, tenant);
          // Progress moves only past an export that completed.
          entry.tenants[tenant] = { id: period.id, to: period.to };
          run.tenants.push(tenant);
          this.#writeState(state);
        }
        current = null;
        entry.last_completed = { id: period.id, from: period.from, to: period.to };
        this.#writeState(state);
        logger?.info({ schedule: schedule.name, period: period.id, tenants: run.tenants.length }, 'scheduled export completed');
        this.#recovered(schedule.name);
      } catch (error) {
        run.error = error;
        // The schedule's later periods wait: its chain only grows at its end.
        failed.add(schedule.name);
        this.#recordFailure(schedule.name, period.id, current, error);
      }
    }
    return runs;
  }

  /**
   * Notes a failed period and when to retry it. The first failure (or a
   * different error) is logged as an error with the period and path; the
   * retries that fail the same way only as warnings, so a disk that stays
   * full for hours gives one error, not one per attempt.
   */
  #recordFailure(schedule: string, period: string, tenant: string | null, error: unknown): void {
    const now = this.#clock.now();
    this.#failedAttempts++;
    const previous = this.#failures.get(schedule);
    const again = previous !== undefined && previous.period === period;
    const attempts = again ? previous.attempts + 1 : 1;
    const retryInMs = this.#retryDelay(attempts);
    const cause = describeFailure(error);
    const failure: ScheduleFailure = {
      schedule,
      period,
      tenant,
      attempts,
      since: again ? previous.since : now,
      retryAt: now + retryInMs,
      ...(cause.code === undefined ? {} : { code: cause.code }),
      ...(cause.errno === undefined ? {} : { errno: cause.errno }),
      message: cause.message,
    };
    this.#failures.set(schedule, failure);
    const fields = { schedule, period, tenant, path: cause.path, code: cause.code, errno: cause.errno, attempt: attempts, retry_in_ms: retryInMs };
    if (!again || previous.code !== failure.code || previous.errno !== failure.errno) {
      this.#options.logger?.error({ ...fields, err: error }, 'scheduled export failed; nothing of it was kept, retrying with backoff (later periods of the schedule wait behind it)');
    } else {
      this.#options.logger?.warn({ ...fields, error: cause.message }, 'scheduled export still failing; retrying');
    }
  }

  #recovered(schedule: string): void {
    const failure = this.#failures.get(schedule);
    if (failure === undefined) return;
    this.#failures.delete(schedule);
    this.#options.logger?.info(
      { schedule, period: failure.period, attempts: failure.attempts + 1, failing_for_ms: this.#clock.now() - failure.since },
      'scheduled export recovered after failing',
    );
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

  /**
   * Write-then-rename: a crash or a full disk leaves the old state or the
   * new, never half of one (and no temp file after a failed write).
   *
   * @throws ExportError `AW_EXPORT_WRITE_FAILED` (retriable), naming the file.
   */
  #writeState(state: State): void {
    const file = this.#options.stateFile;
    const temp = `${file}.${process.pid}.tmp`;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`);
      renameSync(temp, file);
    } catch (error) {
      try {
        rmSync(temp, { force: true });
      } catch {
        // A read-only file system: the temp name is reused by the next write.
      }
      const errno = (error as NodeJS.ErrnoException).code;
      throw new ExportError('AW_EXPORT_WRITE_FAILED', `cannot write the export schedule state ${file}: ${(error as Error).message}`, {
        cause: error,
        retriable: true,
        details: { path: file, ...(typeof errno === 'string' ? { errno } : {}) },
      });
    }
  }
}

/** Code, system error and path of a failure, read from an agentwatch error's details or a system error. */
function describeFailure(error: unknown): { code?: string; errno?: string; path?: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof AgentwatchError) {
    const details = (typeof error.details === 'object' && error.details !== null ? error.details : {}) as { path?: unknown; errno?: unknown };
    return {
      code: error.code,
      ...(typeof details.errno === 'string' ? { errno: details.errno } : {}),
      ...(typeof details.path === 'string' ? { path: details.path } : {}),
      message,
    };
  }
  const system = error as NodeJS.ErrnoException | null;
  return {
    ...(typeof system?.code === 'string' ? { errno: system.code } : {}),
    ...(typeof system?.path === 'string' ? { path: system.path } : {}),
    message,
  };
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
