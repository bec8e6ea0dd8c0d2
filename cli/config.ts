import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { AgentwatchError } from '../core/errors.js';
import { problemsFromZod } from '../core/validation.js';

/** agentwatch configuration: one schema, parsed once at start, frozen. */
export const ConfigSchema = z.strictObject({
  /** HTTP port of the API and ingest. @default 8080 */
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Interface to listen on. Loopback by default: the API is not yet authenticated. @default "127.0.0.1" */
  host: z.string().min(1).default('127.0.0.1'),
  /** Where embedded ClickHouse data (and later keys) live. @default "./data" */
  data_dir: z.string().min(1).default('./data'),
  /** Policy document (YAML or JSON). @default "policies/default.yaml" */
  policies: z.string().min(1).default('policies/default.yaml'),
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
    })
    .prefault({}),
  bus: z
    .strictObject({
      /** Partitions per topic of the embedded bus. @default 4 */
      partitions: z.number().int().min(1).max(256).default(4),
    })
    .prefault({}),
  storage: z
    .strictObject({
      /** Rows per ClickHouse insert, at most. @default 10000 */
      batch_rows: z.number().int().min(1).max(1_000_000).default(10_000),
      /** Longest a row waits before its insert (consumers commit offsets only after it). @default 100 */
      batch_delay_ms: z.number().int().min(1).max(60_000).default(100),
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
  setIfDefined(clickhouse, 'url', env.CLICKHOUSE_URL);
  setIfDefined(clickhouse, 'username', env.CLICKHOUSE_USER);
  setIfDefined(clickhouse, 'password', env.CLICKHOUSE_PASSWORD);
  setIfDefined(clickhouse, 'database', env.CLICKHOUSE_DATABASE);
  merged.clickhouse = clickhouse;
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
