import { AgentwatchError, type AgentwatchErrorOptions } from '../core/errors.js';

/**
 * Stable error codes of the export package. A code is never reused; retry
 * loops (the scheduler's) decide on `retriable` alone.
 */
export const ExportErrorCodes = [
  /** The export section of the config, or a command-line value, is unusable. */
  'AW_EXPORT_INVALID_CONFIG',
  /** A `--from`/`--to` range is malformed or empty. */
  'AW_EXPORT_INVALID_RANGE',
  /** The signing key file exists but cannot be read or is not an ed25519 private key. */
  'AW_EXPORT_BAD_KEY',
  /** Reading rows for an export failed (the store's error is the cause). */
  'AW_EXPORT_READ_FAILED',
  /** Writing the export files failed (disk full, permissions, ...). */
  'AW_EXPORT_WRITE_FAILED',
  /** The schedule state file exists but is not one this version wrote. */
  'AW_EXPORT_BAD_STATE',
] as const;

export type ExportErrorCode = (typeof ExportErrorCodes)[number];

/** Error of the export package: one of {@link ExportErrorCodes}, with cause and retriable flag. */
export class ExportError extends AgentwatchError {
  override readonly code: ExportErrorCode;

  constructor(code: ExportErrorCode, message: string, options?: AgentwatchErrorOptions) {
    super(code, message, options);
    this.name = 'ExportError';
    this.code = code;
  }
}
