import { AgentwatchError, type AgentwatchErrorOptions } from '../core/errors.js';

/** Stable error codes of the alerting package; a code is never reused. */
export const AlertingErrorCodes = [
  /** No such open or acknowledged alert (or silence) visible to the caller. */
  'AW_ALERTING_NOT_FOUND',
  'AW_ALERTING_INVALID_TRANSITION',
  /** A silence to create is malformed; `details` lists the problems by path. */
  'AW_ALERTING_INVALID_SILENCE',
  /** A tenant-bound caller reached for another tenant's or an all-tenant silence. */
  'AW_ALERTING_FORBIDDEN',
  /** A bulk change named more alerts than it may. */
  'AW_ALERTING_TOO_MANY_IDS',
  /**
   * One attempt to deliver a notification failed: a network error, a timeout
   * or a refusing status. `retriable` tells the delivery loop whether to try
   * again (5xx, 408, 425, 429, network) or to dead-letter now (other statuses).
   */
  'AW_ALERTING_DELIVERY_FAILED',
] as const;
export type AlertingErrorCode = (typeof AlertingErrorCodes)[number];

export class AlertingError extends AgentwatchError {
  override readonly code: AlertingErrorCode;

  constructor(code: AlertingErrorCode, message: string, options?: AgentwatchErrorOptions) {
    super(code, message, options);
    this.name = 'AlertingError';
    this.code = code;
  }
}
