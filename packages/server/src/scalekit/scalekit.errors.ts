import { Code, ConnectError } from '@connectrpc/connect';
import { errorCodes, type ErrorCode } from '@hallpass/protocol';
import type { Logger } from 'pino';
import { AppError } from '../shared/errors.ts';
import { ErrorInfoSchema } from './gen/scalekit/v1/errdetails/errdetails_pb.ts';

/**
 * The one mapping from Hallpass's error table to gRPC statuses, for both Scalekit front doors. The
 * SDK turns the status into its exception class and the ErrorInfo detail into `errorCode`, which is
 * Hallpass's stable code (`otp_invalid`, `email_rate_limited_minute`...).
 *
 * Two statuses are kept for what they mean to the SDK, which retries on them:
 * - Unauthenticated (16) only for a missing, unknown, expired or revoked access token: the SDK then
 *   fetches a token and retries. A business error with 16 (a wrong code) would burn four attempts.
 * - Unavailable (14) is never answered by a send or resend: the SDK would retry, and with the mail
 *   already queued the user would get a second one. Unknown failures are Internal (13).
 */
export function grpcCode(code: ErrorCode, credential?: 'code' | 'link'): Code {
  if (code === 'unauthenticated') return Code.Unauthenticated;
  // Scalekit answers a used link as a bad link; a used code is "already verified".
  if (code === 'auth_request_used') return credential === 'link' ? Code.InvalidArgument : Code.FailedPrecondition;
  if (code === 'different_browser') return Code.FailedPrecondition;
  switch (errorCodes[code].status as number) {
    case 400:
      return Code.InvalidArgument;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.NotFound;
    case 409:
    case 410:
      return Code.FailedPrecondition;
    case 429:
      return Code.ResourceExhausted;
    default:
      return Code.Internal;
  }
}

/** The HTTP status grpc-gateway (Scalekit's REST API) gives each gRPC code. */
const httpStatus: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.FailedPrecondition]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.ResourceExhausted]: 429,
  [Code.Internal]: 500,
};

export interface ScalekitError {
  code: Code;
  errorCode: ErrorCode;
  message: string;
  retryAfter: number | undefined;
  details: Record<string, unknown>;
}

/** Any thrown value as a Scalekit error; what is not an AppError is logged and becomes `internal`. */
export function toScalekitError(err: unknown, log: Logger, credential?: 'code' | 'link'): ScalekitError {
  if (err instanceof AppError) {
    return { code: grpcCode(err.code, credential), errorCode: err.code, message: err.message, retryAfter: err.retryAfter, details: err.details };
  }
  log.error({ err }, 'scalekit api: unhandled error');
  return { code: Code.Internal, errorCode: 'internal', message: errorCodes.internal.message, retryAfter: undefined, details: {} };
}

/** For the gRPC front door: a ConnectError with the ErrorInfo detail (and Retry-After as metadata). */
export function toConnectError(e: ScalekitError): ConnectError {
  const metadata = new Headers();
  if (e.retryAfter !== undefined) metadata.set('retry-after', String(e.retryAfter));
  return new ConnectError(e.message, e.code, metadata, [{ desc: ErrorInfoSchema, value: { errorCode: e.errorCode } }]);
}

/** For the REST front door: grpc-gateway's error body, as Scalekit's REST API answers. */
export function toRestError(e: ScalekitError): { status: number; body: Record<string, unknown> } {
  return {
    status: httpStatus[e.code] ?? 500,
    body: {
      code: e.code,
      message: e.message,
      details: [{ '@type': 'type.googleapis.com/scalekit.v1.errdetails.ErrorInfo', error_code: e.errorCode, ...e.details }],
      ...(e.retryAfter !== undefined ? { retry_after: e.retryAfter } : {}),
    },
  };
}
