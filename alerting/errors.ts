import { AgentwatchError } from '../core/errors.js';

export const AlertingErrorCodes = ['AW_ALERTING_NOT_FOUND', 'AW_ALERTING_INVALID_TRANSITION'] as const;
export type AlertingErrorCode = (typeof AlertingErrorCodes)[number];

export class AlertingError extends AgentwatchError {
  constructor(code: AlertingErrorCode, message: string) {
    super(code, message);
    this.name = 'AlertingError';
  }
}
