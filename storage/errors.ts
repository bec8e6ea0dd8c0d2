import { AgentwatchError, type AgentwatchErrorOptions } from '../core/errors.js';

/**
 * Stable error codes of the storage package. A code is never reused; retry
 * loops (the batch writer among them) decide on `retriable` alone.
 */
export const StorageErrorCodes = [
  /** A configured identifier (database name) or option is unusable; fix the config. */
  'AW_STORAGE_INVALID_CONFIG',
  /** A list filter is out of bounds (limit, time range). */
  'AW_STORAGE_INVALID_FILTER',
  /** A pagination cursor was not produced by this store, or was altered. */
  'AW_STORAGE_INVALID_CURSOR',
  /** The migrations folder is missing or holds a badly named or duplicate file. */
  'AW_STORAGE_MIGRATIONS_NOT_FOUND',
  /** A migration statement failed; the version is not recorded, so the next start retries it. */
  'AW_STORAGE_MIGRATION_FAILED',
  /** An applied migration file was edited afterwards; add a new version instead. */
  'AW_STORAGE_MIGRATION_CHANGED',
  /** A read query failed. */
  'AW_STORAGE_QUERY_FAILED',
  /** An insert failed. */
  'AW_STORAGE_INSERT_FAILED',
  /** A stored row could not be mapped back to its record type. */
  'AW_STORAGE_BAD_ROW',
  /** Rows were added to a batch writer after `close()`. */
  'AW_STORAGE_WRITER_CLOSED',
  /** A batch writer gave up on a batch (non-retriable error or attempts exhausted). */
  'AW_STORAGE_WRITE_ABANDONED',
] as const;

export type StorageErrorCode = (typeof StorageErrorCodes)[number];

/** Error of the storage package: one of {@link StorageErrorCodes}, with cause and retriable flag. */
export class StorageError extends AgentwatchError {
  override readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: AgentwatchErrorOptions) {
    super(code, message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

/**
 * Node and undici error codes of a connection that broke or never formed:
 * the request may not have reached the server, so sending it again is safe
 * for idempotent writes (all ours are: replacing tables collapse repeats).
 */
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Whether retrying the operation that threw `error` can help. An explicit
 * `retriable` flag (set by every {@link AgentwatchError}) decides; otherwise
 * network-level failures count as retriable, anywhere along the `cause` chain.
 */
export function isRetriableError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (typeof current !== 'object') return false;
    const flagged = (current as { retriable?: unknown }).retriable;
    if (typeof flagged === 'boolean') return flagged;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
    // @clickhouse/client reports a request timeout as a plain Error with this message.
    if (current instanceof Error && current.message === 'Timeout error.') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
