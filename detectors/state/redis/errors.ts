import { AgentwatchError, type AgentwatchErrorOptions } from '../../../core/errors.js';

/**
 * Stable error codes of the window state store. A code is never reused; the
 * worker retries a batch when, and only when, `retriable` is set — replays are
 * harmless because state operations are idempotent per bus position.
 */
export const StateErrorCodes = [
  /** A store option is unusable (the message names it); fix the configuration. */
  'AW_STATE_INVALID_CONFIG',
  /** A state operation is malformed (non-finite time, non-positive bucket, …): a detector bug. */
  'AW_STATE_INVALID_OP',
  /** Redis could not be reached, the connection broke, or it is loading, read-only or failing over. */
  'AW_STATE_UNAVAILABLE',
  /** Redis refused a write at `maxmemory` (policy `noeviction`): retry once memory is freed. */
  'AW_STATE_OUT_OF_MEMORY',
  /** A state script failed inside Redis (wrong key type, script error): retrying will not help. */
  'AW_STATE_SCRIPT_FAILED',
  /** Redis answered something the store cannot read. */
  'AW_STATE_BAD_REPLY',
  /** The store was used after `close()`. */
  'AW_STATE_CLOSED',
] as const;

export type StateErrorCode = (typeof StateErrorCodes)[number];

/** Error of the state store: one of {@link StateErrorCodes}, with cause and retriable flag. */
export class StateError extends AgentwatchError {
  override readonly code: StateErrorCode;

  constructor(code: StateErrorCode, message: string, options?: AgentwatchErrorOptions) {
    super(code, message, options);
    this.name = 'StateError';
    this.code = code;
  }
}

/**
 * Redis error replies that describe a passing server condition: loading a
 * dataset, a replica not yet promoted, a long script, a cluster resharding or
 * failing over, a failed background save blocking writes.
 */
const TRANSIENT_REPLY_PREFIXES: ReadonlySet<string> = new Set([
  'LOADING',
  'READONLY',
  'BUSY',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'MISCONF',
  'NOREPLICAS',
  'MOVED',
  'ASK',
]);

/**
 * Maps an error from ioredis to a {@link StateError}. Error replies carry the
 * server's first word as their class; anything that is not an error reply
 * (connection refused or closed, offline queue disabled, retries per request
 * exhausted, timeouts) means the command may not have run, so it is
 * retriable: the caller sends the whole batch again, and replays are idempotent.
 */
export function stateErrorFromRedis(error: unknown, context: string): StateError {
  if (error instanceof StateError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const isReply = error instanceof Error && error.name === 'ReplyError';
  if (!isReply) {
    return new StateError('AW_STATE_UNAVAILABLE', `${context}: Redis unavailable: ${message}`, { cause: error, retriable: true });
  }
  const kind = message.slice(0, message.search(/\s|$/));
  if (kind === 'OOM') {
    return new StateError('AW_STATE_OUT_OF_MEMORY', `${context}: Redis is out of memory: ${message}`, { cause: error, retriable: true });
  }
  if (TRANSIENT_REPLY_PREFIXES.has(kind)) {
    return new StateError('AW_STATE_UNAVAILABLE', `${context}: Redis is not serving writes: ${message}`, { cause: error, retriable: true });
  }
  return new StateError('AW_STATE_SCRIPT_FAILED', `${context}: ${message}`, { cause: error, retriable: false });
}
