import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cron } from 'croner';
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { problemsFromZod } from '../core/validation.js';
import { ExportError } from './errors.js';
import { PeriodKinds } from './periods.js';

/**
 * Cron expression used when a schedule names none: fifteen minutes past the
 * period's end in the schedule's zone, so batches still in flight at midnight
 * (storage batching, consumer lag) are stored before the period is read.
 */
export const DEFAULT_CRON: Readonly<Record<(typeof PeriodKinds)[number], string>> = {
  daily: '15 0 * * *',
  weekly: '15 0 * * 1',
  monthly: '15 0 1 * *',
};

/** One export schedule. */
export const ExportScheduleSchema = z
  .strictObject({
    /** Names the schedule in the state file and logs; letters, digits, `-`, `_`. */
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, - or _'),
    /** Calendar period one export covers, in `timezone`: a day, an ISO week (Monday first) or a month. */
    period: z.enum(PeriodKinds),
    /**
     * When the export of the period just ended runs (croner syntax, 5 or 6
     * fields, in `timezone`). A period is exported at the first firing at or
     * after its end.
     * @default DEFAULT_CRON[period] (00:15 after the period ends)
     */
    cron: z.string().min(1).max(200).optional(),
    /** IANA time zone the period boundaries and the cron expression are read in. @default "UTC" */
    timezone: z.string().min(1).default('UTC'),
  })
  .superRefine((schedule, ctx) => {
    if (!IANAZone.isValidZone(schedule.timezone)) {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: `unknown time zone "${schedule.timezone}"` });
      return;
    }
    if (schedule.cron !== undefined) {
      try {
        new Cron(schedule.cron, { paused: true, timezone: schedule.timezone });
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['cron'], message: `not a cron expression: ${(error as Error).message}` });
      }
    }
  });
export type ExportSchedule = z.output<typeof ExportScheduleSchema>;

/**
 * The `export:` section of the configuration (wired into cli/config.ts as
 * `export: ExportConfigSchema.prefault({})`).
 */
export const ExportConfigSchema = z
  .strictObject({
    /**
     * Where exports go: a directory path or a `file://` URL (the only scheme
     * supported). Relative paths are resolved against the working directory.
     * @default "<data_dir>/exports"
     */
    destination: z
      .string()
      .min(1)
      .refine((value) => !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value) || value.startsWith('file://'), 'only file:// destinations (or a plain directory path) are supported')
      .optional(),
    /**
     * ed25519 private key (PKCS8 PEM) the manifests are signed with; created
     * with mode 0600 on first use.
     * @default "<data_dir>/export-signing-key.pem"
     */
    key_file: z.string().min(1).optional(),
    /** Also export the `events` table (`events.ndjson.gz`). @default false */
    include_events: z.boolean().default(false),
    /** Rows read per query; bounds memory per table being exported. @default 10000 */
    page_rows: z.number().int().min(100).max(1_000_000).default(10_000),
    /**
     * Periods the scheduler catches up after downtime, at most; older missed
     * periods are skipped with a warning (backfill them with `agentwatch export run`).
     * @default 400
     */
    max_catch_up: z.number().int().min(1).max(10_000).default(400),
    /**
     * Wait before the scheduler first retries a period whose export failed
     * (a full disk, a read-only remount, the store unreachable); it doubles
     * with each further failure up to `max_retry_delay_ms`. The period, and
     * the later ones of its schedule behind it, stay pending meanwhile.
     * @default 30000
     */
    retry_delay_ms: z.number().int().min(1).max(86_400_000).default(30_000),
    /** Longest wait between two retries of a failing export. @default 900000 (15 min) */
    max_retry_delay_ms: z.number().int().min(1).max(86_400_000).default(900_000),
    /** Schedules run by `agentwatch run` and `agentwatch alerter`; none by default. @default [] */
    schedules: z
      .array(ExportScheduleSchema)
      .max(32)
      .default([])
      .superRefine((schedules, ctx) => {
        const seen = new Set<string>();
        schedules.forEach((s, i) => {
          if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate schedule name "${s.name}"` });
          seen.add(s.name);
        });
      }),
  })
  .superRefine((config, ctx) => {
    if (config.max_retry_delay_ms < config.retry_delay_ms) {
      ctx.addIssue({ code: 'custom', path: ['max_retry_delay_ms'], message: `must be at least retry_delay_ms (${config.retry_delay_ms})` });
    }
  });
export type ExportConfig = z.output<typeof ExportConfigSchema>;

/** Export settings with every path resolved. */
export interface ResolvedExportConfig extends Omit<ExportConfig, 'destination' | 'key_file'> {
  /** Absolute directory exports are written to. */
  dir: string;
  /** Absolute path of the signing key. */
  keyFile: string;
}

/**
 * Parses the `export` section (when the main config does not parse it yet,
 * or to parse it again: parsing is idempotent) and resolves the paths that
 * default into the data directory.
 *
 * @throws ExportError `AW_EXPORT_INVALID_CONFIG` naming the key, e.g. `export.schedules[0].timezone: unknown time zone "Mars/Base"`.
 */
export function resolveExportConfig(config: { readonly data_dir: string; readonly export?: unknown }): Readonly<ResolvedExportConfig> {
  const result = ExportConfigSchema.safeParse(config.export ?? {});
  if (!result.success) {
    const problems = problemsFromZod(result.error, 'export');
    throw new ExportError('AW_EXPORT_INVALID_CONFIG', `invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { details: problems });
  }
  const { destination, key_file, ...rest } = result.data;
  return Object.freeze({
    ...rest,
    dir: destinationDir(destination ?? path.join(config.data_dir, 'exports')),
    keyFile: path.resolve(key_file ?? path.join(config.data_dir, 'export-signing-key.pem')),
  });
}

/** A destination (path or `file://` URL) as an absolute directory path. */
export function destinationDir(destination: string): string {
  if (destination.startsWith('file://')) return fileURLToPath(destination);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(destination)) {
    throw new ExportError('AW_EXPORT_INVALID_CONFIG', `export destination ${destination}: only file:// destinations (or a plain directory path) are supported`);
  }
  return path.resolve(destination);
}

/** The cron expression a schedule runs on. */
export function scheduleCron(schedule: Pick<ExportSchedule, 'cron' | 'period'>): string {
  return schedule.cron ?? DEFAULT_CRON[schedule.period];
}
