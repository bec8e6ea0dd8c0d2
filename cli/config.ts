import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { AgentwatchError } from '../core/errors.js';
import { problemsFromZod } from '../core/validation.js';
import { ApiKeySchema } from '../api/auth.js';
import { DeliveryConfigSchema } from '../alerting/delivery-config.js';
import { ExportConfigSchema } from '../export/config.js';
import { PrivacyConfigSchema, RetentionConfigSchema } from '../storage/clickhouse/retention.js';

/** agentwatch configuration: one schema, parsed once at start, frozen. */
export const ConfigSchema = z.strictObject({
  /** HTTP port of the API and ingest. @default 8080 */
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Interface to listen on. Loopback by default; set 0.0.0.0 (with TLS in front) to serve other machines. @default "127.0.0.1" */
  host: z.string().min(1).default('127.0.0.1'),
  /** Where embedded ClickHouse data (and later keys) live. @default "./data" */
  data_dir: z.string().min(1).default('./data'),
  /** Policy document (YAML or JSON). @default "policies/default.yaml" */
  policies: z.string().min(1).default('policies/default.yaml'),
  /**
   * Base URL of the alerter process (`agentwatch alerter`), for an `agentwatch api`
   * process that runs without the alerter: alert changes (ack, resolve) are
   * forwarded there, because the alerter owns the alert lifecycle.
   */
  alerter_url: z.string().url().optional(),
  /** pino level. @default "info" */
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  clickhouse: z
    .strictObject({
      /** ClickHouse server URL; when unset the embedded engine (chdb) is used. */
      url: z.string().url().optional(),
      /** @default "default" */
      username: z.string().default('default'),
      /** @default "" */
      password: z.string().default(''),
      /** @default "agentwatch" */
      database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier').default('agentwatch'),
    })
    .prefault({}),
  ingest: z
    .strictObject({
      /** Largest encoded event. @default 65536 */
      max_event_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(65536),
      /** Largest request body. @default 4194304 */
      body_limit: z.number().int().min(1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
      /**
       * How far an event's time may be ahead of the receiver's clock (HTTP: the
       * ingest clock; Kafka: the record's timestamp); later events are
       * dead-lettered. Old events are accepted (backfills) and flagged late. @default 900000
       */
      max_future_skew_ms: z.number().int().min(1_000).max(366 * 86_400_000).default(15 * 60_000),
      /** Most events (array items or NDJSON lines) in one `POST /v1/events`; a larger body is refused whole (413) so it can be split and resent. @default 10000 */
      max_items_per_request: z.number().int().min(1).max(1_000_000).default(10_000),
    })
    .prefault({}),
  bus: z
    .strictObject({
      /** Partitions per topic (embedded bus; Kafka topics agentwatch creates). @default 4 */
      partitions: z.coerce.number().int().min(1).max(256).default(4),
    })
    .prefault({}),
  kafka: z
    .strictObject({
      /** Bootstrap brokers, `host:port`; when empty the embedded in-process bus is used. @default [] */
      brokers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port')).default([]),
      /** @default "agentwatch" */
      client_id: z.string().min(1).default('agentwatch'),
      /** Prepended to consumer group names (`agentwatch-detectors`, `agentwatch-alerting`, …), to run several deployments on one cluster. @default "" */
      group_prefix: z.string().max(100).default(''),
      /** A consumer silent this long leaves its group and its partitions move to another instance. @default 30000 */
      session_timeout_ms: z.number().int().min(6_000).max(300_000).default(30_000),
      /** Replication factor of topics agentwatch creates. @default 1 */
      replication_factor: z.number().int().min(1).max(16).default(1),
      topics: z
        .strictObject({
          /** @default "agentwatch.events" */
          events: z.string().min(1).default('agentwatch.events'),
          /** @default "agentwatch.verdicts" */
          verdicts: z.string().min(1).default('agentwatch.verdicts'),
          /** @default "agentwatch.dlq" */
          dlq: z.string().min(1).default('agentwatch.dlq'),
          /** Versions of the policy document, read by every worker. @default "agentwatch.policies" */
          policies: z.string().min(1).default('agentwatch.policies'),
        })
        .prefault({}),
    })
    .prefault({}),
  redis: z
    .strictObject({
      /** Redis URL for window state; when unset the in-memory store is used. */
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
      /** Prefix of every key (no braces). @default "" */
      key_prefix: z.string().max(64).default(''),
      /** Idle window state expires after this long. @default 86400000 */
      idle_ttl_ms: z.number().int().min(60_000).default(86_400_000),
    })
    .prefault({}),
  api: z
    .strictObject({
      /**
       * API keys: `{ id, role: admin|analyst|ingest, tenant?, hash: "sha256:<hex>" }`
       * (`agentwatch keys create` makes one). Only hashes are configured. When
       * empty, the first start creates an admin key in `<data_dir>/admin-api-key`.
       * @default []
       */
      keys: z.array(ApiKeySchema).max(10_000).default([]),
      /** Accept `POST /v1/events` without a key. Off unless said explicitly. @default false */
      allow_unauthenticated_ingest: z.boolean().default(false),
      query: z
        .strictObject({
          /** Most rows `POST /v1/query` returns. @default 10000 */
          max_rows: z.number().int().min(1).max(100_000).default(10_000),
          /** Longest a `POST /v1/query` runs. @default 10 */
          max_seconds: z.number().min(1).max(60).default(10),
        })
        .prefault({}),
      /**
       * Request budgets per API key (one key cannot spend another's, so one
       * tenant cannot starve another), counted in fixed windows per process.
       * Over a budget the answer is 429 `AW_API_RATE_LIMITED` with `Retry-After`.
       * `/healthz`, `/readyz` and `/docs` are never limited. See docs/api.md.
       */
      rate_limit: z
        .strictObject({
          /** Enforce the budgets below. @default true */
          enabled: z.boolean().default(true),
          /** Length of the window every budget is counted in, seconds. @default 60 */
          window_seconds: z.number().int().min(1).max(3600).default(60),
          /** GET requests (lists, searches, `/metrics`) per key per window: a dashboard polling a dozen panels every 5 s stays under it. @default 600 */
          read_per_window: z.number().int().min(1).max(10_000_000).default(600),
          /** Changes (POST, PUT, PATCH, DELETE: acknowledgements, silences, policies) per key per window. @default 300 */
          write_per_window: z.number().int().min(1).max(10_000_000).default(300),
          /** `POST /v1/query` and `POST /v1/dry-run` per key per window: each may hold a scan or a worker thread for seconds. @default 60 */
          costly_per_window: z.number().int().min(1).max(10_000_000).default(60),
          /**
           * `POST /v1/events` requests (each a batch) per key per window, or per
           * client address for unauthenticated ingest. High: agents and collectors send many small batches. @default 100000
           */
          ingest_per_window: z.number().int().min(1).max(100_000_000).default(100_000),
          /** Requests with a missing or unknown key (401) per client address per window; beyond it they get 429. @default 30 */
          auth_failures_per_window: z.number().int().min(1).max(10_000_000).default(30),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Alert delivery: sinks (webhook, Alertmanager, Slack), routing, retries, reminders; see docs/alerting.md. @default {} */
  delivery: DeliveryConfigSchema,
  /** Scheduled, signed compliance exports; see docs/exports.md. @default no schedules */
  export: ExportConfigSchema.prefault({}),
  /** Retention per data class (public, pii, phi), applied as ClickHouse TTLs at start; see docs/retention.md. */
  retention: RetentionConfigSchema.prefault({}),
  /** What of agents' payloads is stored and exported: `store_raw_payloads` (default false), `redact_outputs` (default true). */
  privacy: PrivacyConfigSchema.prefault({}),
  storage: z
    .strictObject({
      /** Rows per ClickHouse insert, at most. @default 10000 */
      batch_rows: z.number().int().min(1).max(1_000_000).default(10_000),
      /** Longest a row waits before its insert (consumers commit offsets only after it; 50 ms keeps p99 event-to-verdict latency under 250 ms at 5,000 events/s, see bench/README.md). @default 50 */
      batch_delay_ms: z.number().int().min(1).max(60_000).default(50),
    })
    .prefault({}),
});
export type Config = Readonly<z.output<typeof ConfigSchema>>;

/** Command-line values that override file and environment. */
export interface ConfigOverrides {
  port?: number | string;
  host?: string;
  dataDir?: string;
  policies?: string;
  logLevel?: string;
}

type Env = Record<string, string | undefined>;

function setIfDefined(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined && value !== '') target[key] = value;
}

/**
 * Builds the configuration: defaults < config file < environment < command line.
 * Errors name the key, e.g. `clickhouse.database: must be a plain identifier`.
 */
export function loadConfig(configPath: string | undefined, env: Env, overrides: ConfigOverrides = {}): Config {
  let fromFile: Record<string, unknown> = {};
  if (configPath !== undefined) {
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8');
    } catch (cause) {
      throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `cannot read config file ${configPath}: ${(cause as Error).message}`, { cause });
    }
    const parsed: unknown = parse(text);
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `config file ${configPath} must hold a mapping`);
    }
    fromFile = (parsed ?? {}) as Record<string, unknown>;
  }
  const merged: Record<string, unknown> = { ...fromFile };
  const clickhouse: Record<string, unknown> = { ...((fromFile.clickhouse as Record<string, unknown> | undefined) ?? {}) };
  setIfDefined(merged, 'port', env.AGENTWATCH_PORT);
  setIfDefined(merged, 'host', env.AGENTWATCH_HOST);
  setIfDefined(merged, 'data_dir', env.AGENTWATCH_DATA_DIR);
  setIfDefined(merged, 'policies', env.AGENTWATCH_POLICIES);
  setIfDefined(merged, 'log_level', env.AGENTWATCH_LOG_LEVEL);
  setIfDefined(merged, 'alerter_url', env.AGENTWATCH_ALERTER_URL);
  if (env.AGENTWATCH_ALLOW_UNAUTHENTICATED_INGEST !== undefined && env.AGENTWATCH_ALLOW_UNAUTHENTICATED_INGEST !== '') {
    merged.api = { ...((fromFile.api as Record<string, unknown> | undefined) ?? {}), allow_unauthenticated_ingest: env.AGENTWATCH_ALLOW_UNAUTHENTICATED_INGEST === 'true' };
  }
  setIfDefined(clickhouse, 'url', env.CLICKHOUSE_URL);
  setIfDefined(clickhouse, 'username', env.CLICKHOUSE_USER);
  setIfDefined(clickhouse, 'password', env.CLICKHOUSE_PASSWORD);
  setIfDefined(clickhouse, 'database', env.CLICKHOUSE_DATABASE);
  merged.clickhouse = clickhouse;
  const kafka: Record<string, unknown> = { ...((fromFile.kafka as Record<string, unknown> | undefined) ?? {}) };
  if (env.KAFKA_BROKERS !== undefined && env.KAFKA_BROKERS.trim() !== '') {
    kafka.brokers = env.KAFKA_BROKERS.split(',').map((b) => b.trim()).filter((b) => b !== '');
  }
  merged.kafka = kafka;
  const redis: Record<string, unknown> = { ...((fromFile.redis as Record<string, unknown> | undefined) ?? {}) };
  setIfDefined(redis, 'url', env.REDIS_URL);
  merged.redis = redis;
  if (env.AGENTWATCH_PARTITIONS !== undefined && env.AGENTWATCH_PARTITIONS !== '') {
    merged.bus = { ...((fromFile.bus as Record<string, unknown> | undefined) ?? {}), partitions: env.AGENTWATCH_PARTITIONS };
  }
  setIfDefined(merged, 'port', overrides.port);
  setIfDefined(merged, 'host', overrides.host);
  setIfDefined(merged, 'data_dir', overrides.dataDir);
  setIfDefined(merged, 'policies', overrides.policies);
  setIfDefined(merged, 'log_level', overrides.logLevel);
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const problems = problemsFromZod(result.error);
    throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
      details: problems,
    });
  }
  return Object.freeze(result.data);
}
