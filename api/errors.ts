/** Stable API error codes; responses are `{ code, message, details }`. */
export const ApiErrorCodes = {
  AW_API_VALIDATION: 400,
  AW_API_POLICY_INVALID: 400,
  AW_API_QUERY_REFUSED: 400,
  AW_API_QUERY_INVALID: 400,
  AW_API_QUERY_LIMIT: 422,
  AW_API_UNAUTHORIZED: 401,
  AW_API_FORBIDDEN: 403,
  AW_API_NOT_FOUND: 404,
  AW_API_BUSY: 429,
  /** A key (or, for failed authentications, a client address) spent its request budget for the window. */
  AW_API_RATE_LIMITED: 429,
  AW_API_DRY_RUN_LIMIT: 422,
  AW_API_CONFLICT: 409,
  AW_API_BODY_TOO_LARGE: 413,
  AW_API_UNSUPPORTED_MEDIA_TYPE: 415,
  AW_API_UNAVAILABLE: 503,
  AW_API_INTERNAL: 500,
} as const;
export type ApiErrorCode = keyof typeof ApiErrorCodes;

export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = ApiErrorCodes[code];
  }
}
