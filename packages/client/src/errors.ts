import { isErrorCode, type ErrorCode } from '@hallpass/protocol';

/** Codes the SDK itself raises, beside the server's closed set. */
export type ClientErrorCode = 'network_error' | 'unexpected_response';

/**
 * Every failure the SDK reports: the server's stable `code` (switch on it, never on `message`), the
 * HTTP `status` (0 when the request never got an answer), and the server's hints.
 * @example
 * try { await hallpass.verify(id, code) } catch (e) {
 *   if (e instanceof HallpassError && e.code === 'otp_invalid') show(e.attemptsRemaining)
 * }
 */
export class HallpassError extends Error {
  override readonly name = 'HallpassError';
  readonly code: ErrorCode | ClientErrorCode;
  readonly status: number;
  /** Seconds to wait before trying again (from `Retry-After`), on 429s. */
  readonly retryAfter: number | undefined;
  /** Wrong codes left before the sign-in request locks (on `otp_invalid`). */
  readonly attemptsRemaining: number | undefined;
  /** Any other fields the server put beside `code`. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode | ClientErrorCode,
    message: string,
    init: { status?: number; retryAfter?: number | undefined; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = code;
    this.status = init.status ?? 0;
    this.retryAfter = init.retryAfter;
    this.details = init.details ?? {};
    const left = this.details.attemptsRemaining;
    this.attemptsRemaining = typeof left === 'number' ? left : undefined;
  }
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date); undefined when absent. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Turns a non-2xx response into a HallpassError carrying the server's code, status and hints. */
export async function errorFromResponse(res: Response): Promise<HallpassError> {
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const error = (body as { error?: Record<string, unknown> } | undefined)?.error;
  if (error && isErrorCode(error.code)) {
    const { code, message, ...details } = error;
    const fromBody = typeof details.retryAfter === 'number' ? details.retryAfter : undefined;
    return new HallpassError(code, typeof message === 'string' ? message : code, {
      status: res.status,
      retryAfter: retryAfter ?? fromBody,
      details,
    });
  }
  return new HallpassError('unexpected_response', `Unexpected response (HTTP ${res.status}).`, { status: res.status, retryAfter });
}
