import path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { isRetriableError, StorageError, type StorageErrorCode } from '../errors.js';

export type { ClickHouseClient } from '@clickhouse/client';

/** Options of {@link createClickHouseClient}. */
export interface ClickHouseClientOptions {
  /**
   * ClickHouse server HTTP(S) URL. When unset the embedded engine (chdb) is used.
   * @default undefined (embedded)
   */
  url?: string;
  /** Server user; ignored by the embedded engine. @default 'default' (client default) */
  username?: string;
  /** Server password; ignored by the embedded engine. @default '' (client default) */
  password?: string;
  /** Database holding agentwatch's tables; must match {@link IDENTIFIER}. */
  database: string;
  /** Data directory of the embedded engine; its files go to `<dataDir>/clickhouse`. */
  dataDir: string;
}

type ClickHouseConnection = NonNullable<ClickHouseClientConfigOptions['connection']>;

/**
 * Grammar of the one identifier that is interpolated into SQL (the database
 * name). Everything else travels as a query parameter.
 */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws `AW_STORAGE_INVALID_CONFIG` unless `name` is a plain identifier; returns it otherwise. */
export function assertIdentifier(name: string, key = 'database'): string {
  if (!IDENTIFIER.test(name)) {
    throw new StorageError(
      'AW_STORAGE_INVALID_CONFIG',
      `${key} must match ${String(IDENTIFIER)} (got ${JSON.stringify(name)})`,
    );
  }
  return name;
}

/**
 * Opens a ClickHouse client: a server when `url` is set, otherwise the
 * embedded engine on `<dataDir>/clickhouse`.
 *
 * The database is validated here so a bad name fails at start-up, but it is
 * not made the client's default database: it may not exist until migrations
 * run, and every query names it explicitly anyway.
 *
 * The embedded engine allows one data directory per process (a second,
 * different path throws) and locks it against other processes.
 */
export function createClickHouseClient(options: ClickHouseClientOptions): ClickHouseClient {
  assertIdentifier(options.database);
  if (options.url !== undefined && options.url !== '') {
    return createClient({
      url: options.url,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
    });
  }
  if (options.dataDir === '') {
    throw new StorageError('AW_STORAGE_INVALID_CONFIG', 'dataDir must be set when no ClickHouse url is configured');
  }
  // chdb takes the path as given; make it absolute so the lock and the
  // one-path-per-process check do not depend on the working directory.
  const enginePath = path.resolve(options.dataDir, 'clickhouse');
  try {
    // chdb types its connection against the separate @clickhouse/client-common
    // package while @clickhouse/client bundles its own copy of the same
    // declarations; TypeScript treats the two as distinct, the runtime
    // contract is the same (chdb's documented usage).
    const connection = createChdbConnection({ path: enginePath }) as unknown as ClickHouseConnection;
    return createClient({ connection });
  } catch (cause) {
    throw new StorageError(
      'AW_STORAGE_INVALID_CONFIG',
      `cannot open the embedded ClickHouse engine at ${enginePath}: ${errorMessage(cause)}`,
      { cause },
    );
  }
}

/**
 * ClickHouse error codes (see `errorCodeToName`) of conditions that pass:
 * overload, timeouts, replica or Keeper trouble, and an insert whose outcome
 * is unknown (safe to repeat: our tables collapse duplicate rows).
 */
const RETRIABLE_CLICKHOUSE_CODES: ReadonlySet<string> = new Set([
  '159', // TIMEOUT_EXCEEDED
  '202', // TOO_MANY_SIMULTANEOUS_QUERIES
  '203', // NO_FREE_CONNECTION
  '209', // SOCKET_TIMEOUT
  '210', // NETWORK_ERROR
  '241', // MEMORY_LIMIT_EXCEEDED
  '242', // TABLE_IS_READ_ONLY
  '252', // TOO_MANY_PARTS
  '285', // TOO_FEW_LIVE_REPLICAS
  '319', // UNKNOWN_STATUS_OF_INSERT
  '425', // SYSTEM_ERROR
  '999', // KEEPER_EXCEPTION
]);

/**
 * Wraps an error thrown by the ClickHouse client in a {@link StorageError},
 * deciding `retriable` once, here: ClickHouse reports a numeric `code`
 * (string) for server-side errors, Node a symbolic one for network errors.
 */
export function toStorageError(code: StorageErrorCode, operation: string, cause: unknown): StorageError {
  if (cause instanceof StorageError) return cause;
  const serverCode = (cause as { code?: unknown } | null)?.code;
  const retriable =
    typeof serverCode === 'string' && /^\d+$/.test(serverCode)
      ? RETRIABLE_CLICKHOUSE_CODES.has(serverCode)
      : isRetriableError(cause);
  return new StorageError(code, `${operation}: ${errorMessage(cause)}`, { cause, retriable });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
