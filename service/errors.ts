/**
 * @module The service's HTTP errors: every refusal is one JSON object `{ error, message,
 * problems? }` with the right status, never a stack trace and never a host path.
 */

export type ApiErrorCode =
  | 'bad-json'
  | 'invalid-request'
  | 'unauthorized'
  | 'not-found'
  | 'unknown-module'
  | 'body-too-large'
  | 'module-too-large'
  | 'limit-above-maximum'
  | 'invalid-module'
  | 'rate-limited'
  | 'too-many-runs'
  | 'queue-full'
  | 'callback-not-allowed'
  | 'source-unsupported'
  | 'compile-error'
  | 'unavailable'
  | 'internal'

export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 413 | 422 | 429 | 501 | 503 | 500,
    readonly code: ApiErrorCode,
    message: string,
    readonly problems?: string[],
    /** Seconds, for `Retry-After` (429, 503). */
    readonly retryAfter?: number,
    /** More fields of the JSON reply (a compile error's structured diagnostics). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'ApiError'
  }

  toJSON(): Record<string, unknown> {
    return {
      ...this.extra,
      error: this.code,
      message: this.message,
      ...(this.problems ? { problems: this.problems } : {}),
      ...(this.retryAfter !== undefined ? { retryAfter: this.retryAfter } : {}),
    }
  }
}
