/**
 * Stable error codes of the core package. A code is never reused; retry loops
 * decide on `retriable` alone.
 */
export const CoreErrorCodes = [
  'AW_CORE_INVALID_EVENT',
  'AW_CORE_INVALID_POLICY',
  'AW_CORE_INVALID_CONFIG',
  'AW_CORE_UNKNOWN_POLICY_TYPE',
] as const;

export type CoreErrorCode = (typeof CoreErrorCodes)[number];

export interface AgentwatchErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  details?: unknown;
}

/** Base error of every agentwatch package: a stable `code`, the `cause`, and whether a retry can help. */
export class AgentwatchError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly details: unknown;

  constructor(code: string, message: string, options: AgentwatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentwatchError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details;
  }
}

export function coreError(code: CoreErrorCode, message: string, options?: AgentwatchErrorOptions): AgentwatchError {
  return new AgentwatchError(code, message, options);
}
