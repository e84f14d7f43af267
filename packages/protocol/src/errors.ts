/**
 * The closed set of error codes Hallpass returns. Every failure leaves the API as
 * `{"error": {"code", "message", ...details}}` with the status below. Clients switch on `code`,
 * never on `message`.
 */
export const errorCodes = {
  // 400: the request itself is wrong; nothing was written.
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_request: { status: 400, message: 'The request body does not match what this endpoint takes.' },
  invalid_email: { status: 400, message: 'That is not a valid email address.' },
  body_too_large: { status: 400, message: 'The request body is larger than 16 KB.' },
  unsupported_media_type: { status: 400, message: 'Send the request body as application/json.' },
  invalid_redirect: { status: 400, message: 'That redirect target is not on the allow-list.' },
  otp_invalid: { status: 400, message: 'That code is not right.' },
  link_invalid: { status: 400, message: 'That sign-in link is not valid. Ask for a new one.' },
  unknown_tenant: { status: 400, message: 'No such tenant.' },
  // 401/403: who is asking.
  unauthenticated: { status: 401, message: 'Sign in first.' },
  session_expired: { status: 401, message: 'The session has ended. Sign in again.' },
  csrf_rejected: { status: 403, message: 'Cross-site request refused.' },
  forbidden: { status: 403, message: 'Not allowed.' },
  different_browser: {
    status: 403,
    message: 'Open this link in the browser where you asked for it.',
  },
  // 404/409/410: the thing asked about.
  not_found: { status: 404, message: 'Not found.' },
  auth_request_not_found: { status: 404, message: 'No such sign-in request. Ask for a new code.' },
  auth_request_used: { status: 409, message: 'This sign-in request was already used.' },
  otp_expired: { status: 410, message: 'The code has expired. Ask for a new one.' },
  link_expired: { status: 410, message: 'The sign-in link has expired. Ask for a new one.' },
  // 429: slow down; each carries Retry-After.
  too_many_attempts: {
    status: 429,
    message: 'Too many wrong codes. Ask for a new code.',
  },
  email_rate_limited_minute: { status: 429, message: 'Too many emails to this address this minute.' },
  email_rate_limited_hour: { status: 429, message: 'Too many emails to this address this hour.' },
  ip_rate_limited: { status: 429, message: 'Too many sign-in requests from this network.' },
  too_many_connections: { status: 429, message: 'Too many open realtime connections from this network.' },
  client_rate_limited: { status: 429, message: 'Too many sign-in requests from this API client.' },
  // 5xx: ours.
  not_ready: { status: 503, message: 'The server is not ready: starting, shutting down, or its database is unreachable.' },
  database_unavailable: { status: 503, message: 'The database cannot be reached just now. Try again in a moment.' },
  internal: { status: 500, message: 'Something went wrong on our side.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** The body of every error response. Extra fields (e.g. `attemptsRemaining`) sit beside `code`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; [detail: string]: unknown };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}
