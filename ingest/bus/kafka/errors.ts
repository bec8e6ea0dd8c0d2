import { AgentwatchError, type AgentwatchErrorOptions } from '../../../core/errors.js';

/**
 * Stable error codes of the Kafka bus adapter. A code is never reused; retry
 * loops decide on `retriable` alone.
 */
export const BusErrorCodes = [
  /** A constructor option is missing or out of bounds; the message names it. */
  'AW_BUS_INVALID_OPTIONS',
  /** `publish` or `subscribe` after `close()`. */
  'AW_BUS_CLOSED',
  /** Creating (or checking) a topic failed. */
  'AW_BUS_TOPIC_FAILED',
  /** The broker did not acknowledge a produce request. */
  'AW_BUS_PUBLISH_FAILED',
  /** Joining the consumer group or starting the consumer failed. */
  'AW_BUS_SUBSCRIBE_FAILED',
  /** Committing a batch's offsets failed; the batch will be delivered again. */
  'AW_BUS_COMMIT_FAILED',
  /** A record that failed to decode could not be written to the dead-letter topic; it is not committed. */
  'AW_BUS_DEAD_LETTER_FAILED',
  /** Reading a group's committed offsets failed. */
  'AW_BUS_OFFSETS_FAILED',
] as const;

export type BusErrorCode = (typeof BusErrorCodes)[number];

/** Error of the Kafka bus adapter: one of {@link BusErrorCodes}, with cause and retriable flag. */
export class BusError extends AgentwatchError {
  override readonly code: BusErrorCode;

  constructor(code: BusErrorCode, message: string, options?: AgentwatchErrorOptions) {
    super(code, message, options);
    this.name = 'BusError';
    this.code = code;
  }
}

/**
 * Wraps a kafkajs failure. KafkaJS errors carry their own `retriable` flag
 * (connection loss, leader moves, rebalances are retriable); it is kept, so a
 * caller's retry loop can decide on `retriable` alone.
 */
export function wrapKafkaError(code: BusErrorCode, message: string, cause: unknown): BusError {
  const flagged = typeof cause === 'object' && cause !== null ? (cause as { retriable?: unknown }).retriable : undefined;
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new BusError(code, `${message}${detail}`, { cause, retriable: typeof flagged === 'boolean' ? flagged : false });
}
