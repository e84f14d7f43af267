import type { DbRole } from '@hallpass/db';
import type { AppError } from '../shared/errors.ts';

/**
 * `/rest/v1` speaks PostgREST, so its errors have PostgREST's shape `{code, message, details, hint}`
 * and PostgREST's codes (`PGRST...`, or the SQLSTATE for database errors): supabase-js hands that body
 * to the app as `error` unchanged. The closed set of PGRST codes used here is documented in
 * docs/security.md; the app-wide `{error: {code}}` shape stays for every other route.
 */
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly hint: string | null = null,
  ) {
    super(message);
    this.name = 'RestError';
  }

  toBody() {
    return { code: this.code, message: this.message, details: this.details, hint: this.hint };
  }
}

export const restErrors = {
  /** The query string or body cannot be parsed into the supported PostgREST subset. */
  parse: (message: string, details: string | null = null) => new RestError(400, 'PGRST100', message, details),
  /** A Prefer header with preferences we do not know, under handling=strict. */
  preferences: (invalid: readonly string[]) =>
    new RestError(400, 'PGRST122', 'Invalid preferences given with handling=strict', `Invalid preferences: ${invalid.join(', ')}`),
  /** A Range header or offset outside the rows. */
  range: (details: string) => new RestError(416, 'PGRST103', 'Requested range not satisfiable', details),
  /** JSON body problems. */
  invalidBody: (message: string) => new RestError(400, 'PGRST102', message),
  /** A schema that is not exposed (Accept-Profile / Content-Profile). */
  schema: (schema: string, exposed: readonly string[]) =>
    new RestError(406, 'PGRST106', 'The schema must be one of the following: ' + exposed.join(', '), null, `Not exposed: ${schema}`),
  /** The Accept header asks for a media type we do not produce. */
  mediaType: (accept: string) => new RestError(406, 'PGRST107', `None of these media types are available: ${accept}`),
  /** `single()` or a singular write that did not hit exactly one row. */
  singular: (rows: number) =>
    new RestError(406, 'PGRST116', 'Cannot coerce the result to a single JSON object', `The result contains ${rows} rows`),
  /** An unknown table or view in the exposed schema. */
  table: (schema: string, table: string) =>
    new RestError(404, 'PGRST205', `Could not find the table '${schema}.${table}' in the schema cache`),
  /** An unknown column in select, filters, order or the body. */
  column: (table: string, column: string) =>
    new RestError(400, 'PGRST204', `Could not find the '${column}' column of '${table}' in the schema cache`),
  /** Missing, invalid, expired or revoked credentials. */
  jwt: (message: string) => new RestError(401, 'PGRST301', message),
  noCredentials: () =>
    new RestError(401, 'PGRST302', 'No API key found in request', null, 'Send the anon key in the apikey header, or a session.'),
  method: (method: string) => new RestError(405, 'PGRST117', `Unsupported HTTP method: ${method}`),
  rpcMethod: (method: string) => new RestError(405, 'PGRST101', `Cannot use the ${method} method on RPC`),
} as const;

/** SQLSTATE -> HTTP status, as PostgREST maps them (errors.md "HTTP status codes"). */
function statusOfSqlState(state: string, role: DbRole): number {
  if (state === '42501') return role === 'anon' ? 401 : 403; // insufficient privilege / RLS
  if (state === '23505' || state === '23503') return 409; // unique / foreign key
  if (state === '42P01') return 404; // undefined table (dropped after the cache loaded it)
  if (state === '42883') return 404; // undefined function
  if (state === '25006') return 405; // read-only transaction
  if (state === '40001') return 409; // serialization failure: the client may retry
  if (state === '57P01') return 503; // terminating connection due to administrator command
  if (state.startsWith('57')) return 500; // statement timeout (57014) and other operator intervention, as PostgREST
  if (state === '21000' || state === '42P17' || state === '53400') return 500;
  if (state.startsWith('08') || state.startsWith('53')) return 503;
  if (state.startsWith('22') || state.startsWith('23') || state.startsWith('42') || state === 'P0001' || state === '54000') return 400;
  return 500;
}

export interface PgError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function isPgError(err: unknown): err is PgError {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * A database error as the client sees it: PostgREST passes the SQLSTATE, message, detail and hint
 * through; so do we. Privilege errors get a hint saying where the rule lives.
 */
export function fromPgError(err: PgError, role: DbRole): RestError {
  const status = statusOfSqlState(err.code, role);
  let hint = err.hint ?? null;
  if (err.code === '42501' && !hint) {
    hint = /row-level security/.test(err.message)
      ? 'The row is not one this session may write: row-level security policies decide.'
      : 'This role lacks the table or column privilege; clients may write only the columns granted to them.';
  }
  return new RestError(status, err.code, err.message, err.detail ?? null, hint);
}

/**
 * Failures from shared middleware (origin check, body limit) and sessions on `/rest/v1`, in PostgREST's
 * shape. A 401 takes PostgREST's JWT code; the rest keep Hallpass's own stable code.
 */
export function fromAppError(err: AppError): RestError {
  return new RestError(err.status, err.status === 401 ? 'PGRST301' : err.code, err.message);
}
