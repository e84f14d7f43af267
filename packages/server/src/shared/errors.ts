import { errorCodes, type ErrorCode } from '@hallpass/protocol';

export interface AppErrorOptions {
  /** Extra fields sent beside `code` and `message` (e.g. `attemptsRemaining`). */
  details?: Record<string, unknown>;
  /** Seconds; sent as the `Retry-After` header and `retryAfter` field. */
  retryAfter?: number;
  message?: string;
  cause?: unknown;
}

/**
 * The one error type feature code throws. Its `code` is from the closed table in
 * `@hallpass/protocol`; the HTTP layer maps it to a status and JSON body in one place.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(options.message ?? errorCodes[code].message, options.cause ? { cause: options.cause } : undefined);
    this.name = 'AppError';
    this.code = code;
    this.status = errorCodes[code].status;
    this.details = options.details ?? {};
    this.retryAfter = options.retryAfter === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfter));
  }
}
