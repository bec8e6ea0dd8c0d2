import { z } from 'zod';
import type { AgentEvent } from '../../core/event.js';
import type { DeadLetter } from '../../core/records.js';
import { StorageError } from '../errors.js';
import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';

// ---------------------------------------------------------------- data classes and tables

/**
 * Data classes a table's rows belong to; each class has its own retention.
 * `public`: no personal data (decisions, hashes, ids of agents);
 * `pii`: personal data (who ran an agent, what it touched, prompts);
 * `phi`: health data (deployments under HIPAA assign their raw tables to it).
 */
export const DATA_CLASSES = ['public', 'pii', 'phi'] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

/**
 * The tables whose rows expire: the column a row's age is measured from, and
 * the data class it belongs to unless configured otherwise.
 *
 * - `events`: source user, host, IP, resources, URLs (and content when
 *   `store_raw_payloads` is on): pii. Age from the event time, which is also
 *   the partition key, so expiry tends to empty whole monthly partitions.
 * - `dead_letters`: raw input, which may be anything an agent sent: pii.
 * - `verdicts`: agent names, reasons and evidence quoting resources: pii.
 * - `alerts`: reasons, evidence and acknowledger names: pii. Age from
 *   `updated_at`, the latest change: every older version of an alert row has an
 *   older `updated_at`, so the newest version is always the last to go, and an
 *   alert still being counted is not removed while it is active.
 * - `capability_history`: derived from events (agent names, keys): pii.
 * - `audit_log`: decisions, policy ids, hashes and agent ids, no content:
 *   public. It is the compliance record, so it usually needs the longest
 *   retention. Age from `evaluated_at`, not the event time: a chain is in
 *   evaluation order, so rows expire from its start and the rest still
 *   verifies from its first retained link (by event time, a late event's row
 *   would expire before its neighbours and leave a hole in the chain).
 *
 * - `alert_deliveries`: notification outbox with alert snapshots: pii, age from `created_at`.
 *
 * Never expiring, by design, and so absent here: `policy_versions` (the rules
 * every retained audit row was judged by; audit rows name their version),
 * `silences` (a handful of rows that explain `alerts.silenced_by`) and
 * `schema_migrations` (the migration ledger).
 */
export const RETENTION_TABLES = {
  events: { timeColumn: 'time', defaultClass: 'pii' },
  dead_letters: { timeColumn: 'received_at', defaultClass: 'pii' },
  verdicts: { timeColumn: 'time', defaultClass: 'pii' },
  alerts: { timeColumn: 'updated_at', defaultClass: 'pii' },
  capability_history: { timeColumn: 'time', defaultClass: 'pii' },
  audit_log: { timeColumn: 'evaluated_at', defaultClass: 'public' },
  alert_deliveries: { timeColumn: 'created_at', defaultClass: 'pii' },
} as const satisfies Record<string, { timeColumn: string; defaultClass: DataClass }>;
export type RetentionTable = keyof typeof RETENTION_TABLES;

/** Tables that never expire; see {@link RETENTION_TABLES} for why. */
export const NEVER_EXPIRING_TABLES = ['policy_versions', 'silences', 'schema_migrations'] as const;

// ---------------------------------------------------------------- durations

/** How long a data class is kept: a whole number of days or calendar years; null keeps rows forever. */
export type RetentionPeriod = { unit: 'day' | 'year'; count: number } | null;

/**
 * Grammar: `<n>d` (days), `<n>w` (weeks, kept as 7n days), `<n>y` (calendar
 * years, so a leap day never shortens a year), or `forever`. No months: `m`
 * reads as minutes to many people and months have no fixed length. Bounded
 * at 100 years, far beyond any legal retention, so the integer spliced into
 * the TTL is always small.
 */
const DURATION = /^([1-9][0-9]{0,5})([dwy])$/;
const MAX_DAYS = 36_500;
const MAX_YEARS = 100;
const DURATION_HINT = 'must be "forever" or a whole number of days, weeks or years such as "30d", "12w", "1y"';

/** Why `text` is not a duration, or null when it is one. */
function durationProblem(text: string): string | null {
  if (text === 'forever') return null;
  const match = DURATION.exec(text);
  if (match === null) return `${DURATION_HINT} (got ${JSON.stringify(text)})`;
  const count = Number(match[1]);
  const days = match[2] === 'w' ? count * 7 : count;
  if (match[2] === 'y' ? count > MAX_YEARS : days > MAX_DAYS) {
    return `must be at most 100 years (${MAX_DAYS}d, ${Math.floor(MAX_DAYS / 7)}w or ${MAX_YEARS}y; got ${JSON.stringify(text)})`;
  }
  return null;
}

/**
 * Parses a retention duration (grammar at {@link DURATION}).
 * @param key names the setting in the error, e.g. `retention.classes.pii`.
 * @throws StorageError `AW_STORAGE_INVALID_CONFIG` naming `key`.
 */
export function parseRetentionPeriod(text: string, key: string): RetentionPeriod {
  const problem = durationProblem(text);
  if (problem !== null) throw new StorageError('AW_STORAGE_INVALID_CONFIG', `${key} ${problem}`);
  if (text === 'forever') return null;
  const match = DURATION.exec(text) as RegExpExecArray;
  const count = Number(match[1]);
  if (match[2] === 'y') return { unit: 'year', count };
  return { unit: 'day', count: match[2] === 'w' ? count * 7 : count };
}

const RetentionDurationSchema = z.string().superRefine((text, ctx) => {
  const problem = durationProblem(text);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

const DataClassSchema = z.enum(DATA_CLASSES);

// ---------------------------------------------------------------- config

/**
 * `retention:` of the config file. A table keeps its rows for the retention
 * of its data class; a class without one uses `default_retention`.
 */
export const RetentionConfigSchema = z.strictObject({
  /** Retention of every class not given in `classes`. @default "400d" */
  default_retention: RetentionDurationSchema.default('400d'),
  classes: z
    .strictObject({
      /** Retention of public data (audit log). @default default_retention */
      public: RetentionDurationSchema.optional(),
      /** Retention of personal data (events, dead letters, verdicts, alerts, capability history). @default default_retention */
      pii: RetentionDurationSchema.optional(),
      /** Retention of health data (no table by default; assign tables to it). @default default_retention */
      phi: RetentionDurationSchema.optional(),
    })
    .prefault({}),
  /** The data class of each table whose rows expire (see RETENTION_TABLES for the reasons of the defaults). */
  tables: z
    .strictObject({
      /** @default "pii" */
      events: DataClassSchema.default(RETENTION_TABLES.events.defaultClass),
      /** @default "pii" */
      dead_letters: DataClassSchema.default(RETENTION_TABLES.dead_letters.defaultClass),
      /** @default "pii" */
      verdicts: DataClassSchema.default(RETENTION_TABLES.verdicts.defaultClass),
      /** @default "pii" */
      alerts: DataClassSchema.default(RETENTION_TABLES.alerts.defaultClass),
      /** @default "pii" */
      capability_history: DataClassSchema.default(RETENTION_TABLES.capability_history.defaultClass),
      /** @default "public" */
      audit_log: DataClassSchema.default(RETENTION_TABLES.audit_log.defaultClass),
      alert_deliveries: DataClassSchema.default(RETENTION_TABLES.alert_deliveries.defaultClass),
    })
    .prefault({}),
});
export type RetentionConfig = z.output<typeof RetentionConfigSchema>;

/**
 * `privacy:` of the config file: what of an agent's payloads is kept.
 *
 * | setting | `events.content_input` / `content_output` | `dead_letters.raw` |
 * |---|---|---|
 * | `store_raw_payloads: false` (default) | `''` | the input (truncated at ingest); when it parses as JSON, every string under `content` replaced by `[omitted]` |
 * | `store_raw_payloads: true` | the event's `content.input` / `content.output` | the input as received (truncated at ingest) |
 * | `redact_outputs: true` (default) | ... with every sensitive match replaced by `[REDACTED:<kind>]` | ... likewise |
 * | `redact_outputs: false` | ... as sent | ... as sent |
 *
 * Dead letters keep their input under both settings: they exist to debug
 * input that could not be parsed, and input that cannot be parsed cannot have
 * its `content` cut out. Every other column holds the same under all settings.
 * Exports read what is stored, so they follow the same rules.
 */
export const PrivacyConfigSchema = z.strictObject({
  /** Store events' `content` (prompts and responses). @default false */
  store_raw_payloads: z.boolean().default(false),
  /**
   * Replace sensitive data (the built-in kinds of the data_protection policy:
   * SSNs, card numbers, e-mail addresses, phone numbers, IBANs, API keys,
   * private keys) in stored payloads and dead letters by `[REDACTED:<kind>]`.
   * @default true
   */
  redact_outputs: z.boolean().default(true),
});
export type PrivacyConfig = z.output<typeof PrivacyConfigSchema>;

/**
 * Privacy as the analytics store applies it: the config plus the redactor.
 * The redactor is passed in rather than imported because storage does not
 * import detectors; the composition root builds it from data_protection's
 * `redactText` (see the store's `privacy` option).
 */
export interface StoragePrivacy extends PrivacyConfig {
  /**
   * Returns `text` with its sensitive data replaced. Required when
   * `redact_outputs` is true and something is stored that it applies to.
   */
  redactText?: (text: string) => string;
}

/** The defaults of {@link PrivacyConfigSchema}: no payloads stored, so no redactor needed. */
export const DEFAULT_PRIVACY: Readonly<StoragePrivacy> = Object.freeze({ store_raw_payloads: false, redact_outputs: true });

/** Placeholder of a payload left out of a stored dead letter. */
export const OMITTED = '[omitted]';

/**
 * The `content` columns of an event as stored under `privacy`:
 * `[input, output]`, '' for an absent field or when payloads are not stored.
 * @throws StorageError `AW_STORAGE_INVALID_CONFIG` when redaction is asked for without a redactor.
 */
export function storedContent(event: AgentEvent, privacy: StoragePrivacy): [string, string] {
  if (!privacy.store_raw_payloads || event.content === undefined) return ['', ''];
  const redact = redactorOf(privacy);
  const { input = '', output = '' } = event.content;
  return [input === '' ? '' : redact(input), output === '' ? '' : redact(output)];
}

/**
 * The function that turns a dead letter into what is stored under `privacy`
 * (see {@link PrivacyConfigSchema}); pure, the letter is not changed. Built
 * once at start so that a missing redactor stops start-up, not the first
 * dead letter.
 * @throws StorageError `AW_STORAGE_INVALID_CONFIG` when redaction is asked for without a redactor.
 */
export function deadLetterSanitizer(privacy: StoragePrivacy): (letter: DeadLetter) => DeadLetter {
  const redact = redactorOf(privacy);
  const omit = !privacy.store_raw_payloads;
  return (letter) => {
    const raw = redact(omit ? omitContent(letter.raw) : letter.raw);
    return raw === letter.raw ? letter : { ...letter, raw };
  };
}

/**
 * Throws unless the store can apply `privacy` to events: checked in the
 * store's constructor, so a missing redactor stops start-up.
 */
export function assertEventPrivacy(privacy: StoragePrivacy, key = 'privacy'): void {
  if (typeof privacy.store_raw_payloads !== 'boolean' || typeof privacy.redact_outputs !== 'boolean') {
    throw new StorageError('AW_STORAGE_INVALID_CONFIG', `${key}.store_raw_payloads and ${key}.redact_outputs must be booleans`);
  }
  if (privacy.store_raw_payloads) redactorOf(privacy, key);
}

const IDENTITY = (text: string): string => text;

function redactorOf(privacy: StoragePrivacy, key = 'privacy'): (text: string) => string {
  if (!privacy.redact_outputs) return IDENTITY;
  if (privacy.redactText === undefined) {
    // Fail closed: storing unredacted text because the wiring forgot the redactor would be a silent leak.
    throw new StorageError('AW_STORAGE_INVALID_CONFIG', `${key}.redact_outputs is true but no redactText function was given (build it from data_protection's redactText)`);
  }
  return privacy.redactText;
}

/** `raw` with the strings under a JSON object's `content` replaced by {@link OMITTED}; `raw` itself when it is not such JSON. */
function omitContent(raw: string): string {
  if (!raw.includes('"content"')) return raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return raw;
  }
  let changed = false;
  const omit = (value: unknown): unknown => {
    if (typeof value === 'string') {
      changed = true;
      return OMITTED;
    }
    if (Array.isArray(value)) return value.map(omit);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, omit(v)]));
    return value;
  };
  // An ingest body is one event, an array of them, or `{ events: [...] }`.
  const visit = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(visit);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'content' ? omit(v) : k === 'events' ? visit(v) : v]));
  };
  const out = visit(parsed);
  return changed ? JSON.stringify(out) : raw;
}

// ---------------------------------------------------------------- TTLs

/** One table's retention, resolved from the config. */
export interface TableRetention {
  table: RetentionTable;
  dataClass: DataClass;
  period: RetentionPeriod;
  /** The TTL expression as ClickHouse prints it back (`time + toIntervalDay(30)`); null for no TTL. */
  ttl: string | null;
}

/**
 * Each table's data class, period and TTL expression under `config`. Pure.
 * The TTL is written in the form ClickHouse normalises it to, so comparing it
 * with the stored one tells whether anything changed. The age column is used
 * as it is (DateTime64): `toDateTime` would wrap event times past 2106.
 * @throws StorageError `AW_STORAGE_INVALID_CONFIG` naming the key of a bad duration.
 */
export function planRetention(config: RetentionConfig): TableRetention[] {
  const fallback = parseRetentionPeriod(config.default_retention, 'retention.default_retention');
  const periods = new Map<DataClass, RetentionPeriod>(
    DATA_CLASSES.map((dataClass) => {
      const text = config.classes[dataClass];
      return [dataClass, text === undefined ? fallback : parseRetentionPeriod(text, `retention.classes.${dataClass}`)];
    }),
  );
  return (Object.keys(RETENTION_TABLES) as RetentionTable[]).map((table) => {
    const dataClass = config.tables[table];
    if (!(DATA_CLASSES as readonly string[]).includes(dataClass)) {
      throw new StorageError('AW_STORAGE_INVALID_CONFIG', `retention.tables.${table} must be one of ${DATA_CLASSES.join(', ')} (got ${JSON.stringify(dataClass)})`);
    }
    const period = periods.get(dataClass) ?? null;
    return { table, dataClass, period, ttl: ttlExpression(RETENTION_TABLES[table].timeColumn, period) };
  });
}

function ttlExpression(column: string, period: RetentionPeriod): string | null {
  if (period === null) return null;
  // The count was bounded by parseRetentionPeriod; checked again because it is spliced into DDL.
  if (!Number.isSafeInteger(period.count) || period.count < 1 || period.count > MAX_DAYS) {
    throw new StorageError('AW_STORAGE_INVALID_CONFIG', `retention period ${period.count} is not a whole number from 1 to ${MAX_DAYS}`);
  }
  return `${column} + ${period.unit === 'day' ? 'toIntervalDay' : 'toIntervalYear'}(${period.count})`;
}

/** What {@link applyRetention} did to one table. */
export interface RetentionChange extends TableRetention {
  /** The TTL before the call; null for none. */
  previous: string | null;
  /** `set`/`removed`: changed now; `unchanged`: already so; `missing`: no such table (not created by migrations yet). */
  outcome: 'set' | 'removed' | 'unchanged' | 'missing';
}

/**
 * Sets each table's TTL to its data class's retention (or removes it for
 * `forever`), at start-up after the migrations. Idempotent: a table whose TTL
 * already matches is not touched, which matters because a changed TTL is
 * materialised (ClickHouse rewrites the table's parts in a background
 * mutation to drop expired rows); from then on merges drop rows as they
 * expire. TTLs are DDL, which takes no query parameters: the only text spliced
 * in is the validated database name, fixed table and column names, and a
 * bounded integer.
 *
 * Two processes configured differently would overwrite each other's TTLs at
 * each start; give every process of a deployment the same `retention`.
 *
 * @throws StorageError `AW_STORAGE_INVALID_CONFIG` for a bad database name or duration;
 *   `AW_STORAGE_MIGRATION_FAILED` when ClickHouse refuses a statement.
 */
export async function applyRetention(client: ClickHouseClient, database: string, config: RetentionConfig): Promise<RetentionChange[]> {
  const db = assertIdentifier(database);
  const plan = planRetention(config);
  const current = await currentTtls(client, db);
  const changes: RetentionChange[] = [];
  for (const entry of plan) {
    if (!current.has(entry.table)) {
      changes.push({ ...entry, previous: null, outcome: 'missing' });
      continue;
    }
    const previous = current.get(entry.table) ?? null;
    if (previous === entry.ttl) {
      changes.push({ ...entry, previous, outcome: 'unchanged' });
      continue;
    }
    const statement =
      entry.ttl === null ? `ALTER TABLE ${db}.${entry.table} REMOVE TTL` : `ALTER TABLE ${db}.${entry.table} MODIFY TTL ${entry.ttl}`;
    try {
      await client.command({ query: statement });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_MIGRATION_FAILED', `setting the retention of ${db}.${entry.table} (${entry.dataClass})`, cause);
    }
    changes.push({ ...entry, previous, outcome: entry.ttl === null ? 'removed' : 'set' });
  }
  return changes;
}

/** The table TTL of each retention table that exists in `db` (null for none), read from `system.tables`. */
export async function currentTtls(client: ClickHouseClient, database: string): Promise<Map<string, string | null>> {
  let rows: { name: string; engine_full: string }[];
  try {
    const result = await client.query({
      query: 'SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}',
      query_params: { db: assertIdentifier(database), names: Object.keys(RETENTION_TABLES) },
      format: 'JSONEachRow',
    });
    rows = await result.json<{ name: string; engine_full: string }>();
  } catch (cause) {
    throw toStorageError('AW_STORAGE_QUERY_FAILED', `reading the TTLs of ${database}`, cause);
  }
  return new Map(rows.map((row) => [row.name, tableTtl(row.engine_full)]));
}

/**
 * The table TTL clause of an `engine_full` such as `MergeTree PARTITION BY …
 * ORDER BY … TTL received_at + toIntervalDay(30) SETTINGS index_granularity = 8192`,
 * or null. Column TTLs live in the column list, not in `engine_full`.
 */
export function tableTtl(engineFull: string): string | null {
  const match = / TTL (.+?)(?: SETTINGS .*)?$/.exec(engineFull);
  return match?.[1] ?? null;
}
