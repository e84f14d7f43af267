import { prepared, type Queryable } from '@hallpass/db';
import type { PasswordlessType } from '@hallpass/protocol';
import type { ProfileRow } from '../profiles/profiles.repository.ts';
import type { SessionRow } from '../sessions/sessions.repository.ts';

export interface AuthRequestRow {
  id: string;
  tenant_id: string;
  email: string;
  passwordless_type: PasswordlessType;
  code_hash: Uint8Array | null;
  link_hash: Uint8Array | null;
  binding_hash: Uint8Array | null;
  state: string | null;
  redirect_to: string | null;
  expires_at: Date;
  failed_attempts: number;
  attempts_window_start: Date | null;
  locked_at: Date | null;
  consumed_at: Date | null;
}

const columns = `id, tenant_id, email, passwordless_type, code_hash, link_hash, binding_hash, state, redirect_to,
  expires_at, failed_attempts, attempts_window_start, locked_at, consumed_at`;

export interface RateLimitRule {
  key: string;
  limit: number;
  periodSeconds: number;
}

/** Takes one unit from every rule or from none; returns the first rule that refused, if any. */
export async function takeRateLimits(
  q: Queryable,
  rules: readonly RateLimitRule[],
): Promise<{ rejected: number; retryAfter: number } | undefined> {
  const { rows } = await q.query<{ rejected_index: number; retry_after: number }>(
    'select rejected_index, retry_after from hallpass.rate_limit_take($1::text[], $2::int[], $3::float8[])',
    [rules.map((r) => r.key), rules.map((r) => r.limit), rules.map((r) => r.periodSeconds)],
  );
  const row = rows[0]!;
  return row.rejected_index === 0 ? undefined : { rejected: row.rejected_index - 1, retryAfter: row.retry_after };
}

export interface NewAuthRequest {
  id: string;
  tenantId: string;
  email: string;
  type: PasswordlessType;
  codeHash: Buffer | null;
  linkHash: Buffer | null;
  bindingHash: Buffer | null;
  state: string | null;
  redirectTo: string | null;
  expiresAt: Date;
  ip: string | null;
  userAgent: string | null;
}

export interface NewSend {
  request: NewAuthRequest;
  /** The sealed email to queue with it. */
  mail: Buffer;
  /** The send limits, exactly three (per address per minute, per address per hour, per IP). */
  rules: readonly RateLimitRule[];
}

export type SendOutcome =
  | { refused: { rejected: number; retryAfter: number } }
  | { refused?: undefined; mail: { id: number; known: boolean } };

/**
 * Sends in one statement (hallpass.send_requests, migration 0013): each item's limits are taken
 * (all of its rules or none), then the allowed requests are recorded with their sealed mail, the
 * mail already leased to this instance for `leaseSeconds`. Returns, per item in order, the rule that
 * refused it, or its mail row (id, and whether the address has a profile: sign-in or sign-up mail).
 */
const sendRequestsSql = prepared(`select item, rejected_index, retry_after, mail_id, known
  from hallpass.send_requests($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`);

export async function sendRequests(q: Queryable, items: readonly NewSend[], leaseSeconds: number): Promise<SendOutcome[]> {
  const col = <T>(f: (s: NewSend) => T) => items.map(f);
  const { rows } = await q.query<{ item: number; rejected_index: number; retry_after: number; mail_id: number | null; known: boolean | null }>(
    sendRequestsSql,
    [
      col((s) => s.request.id), col((s) => s.request.tenantId), col((s) => s.request.email), col((s) => s.request.type),
      col((s) => s.request.codeHash), col((s) => s.request.linkHash), col((s) => s.request.bindingHash), col((s) => s.request.state),
      col((s) => s.request.redirectTo), col((s) => s.request.expiresAt), col((s) => s.request.ip), col((s) => s.request.userAgent),
      col((s) => s.mail),
      col((s) => s.rules.map((r) => r.key)), col((s) => s.rules.map((r) => r.limit)), col((s) => s.rules.map((r) => r.periodSeconds)),
      leaseSeconds,
    ],
  );
  const byItem = new Map(rows.map((r) => [r.item, r]));
  return items.map((_, i) => {
    const row = byItem.get(i + 1)!;
    if (row.rejected_index !== 0) return { refused: { rejected: row.rejected_index - 1, retryAfter: row.retry_after } };
    return { mail: { id: row.mail_id!, known: row.known! } };
  });
}

export async function findAuthRequest(q: Queryable, id: string): Promise<AuthRequestRow | undefined> {
  const { rows } = await q.query<AuthRequestRow>(`select ${columns} from hallpass.auth_requests where id = $1`, [id]);
  return rows[0];
}

/** Locks the request row: concurrent verifies of one code run one after another, so one wins. */
export async function lockAuthRequest(q: Queryable, id: string): Promise<AuthRequestRow | undefined> {
  const { rows } = await q.query<AuthRequestRow>(`select ${columns} from hallpass.auth_requests where id = $1 for update`, [id]);
  return rows[0];
}

/**
 * Finds a request by the digest of its link token. The lookup is by an HMAC digest the caller cannot
 * compute without the server secret, so its timing tells nothing; the caller still compares the
 * digest in constant time.
 */
export async function findAuthRequestByLink(q: Queryable, linkHash: Buffer, lock: boolean): Promise<AuthRequestRow | undefined> {
  const { rows } = await q.query<AuthRequestRow>(
    `select ${columns} from hallpass.auth_requests where link_hash = $1${lock ? ' for update' : ''}`,
    [linkHash],
  );
  return rows[0];
}

export interface SignInRow {
  profile: ProfileRow;
  created: boolean;
  session: SessionRow;
}

export interface SignInWrite {
  at: Date;
  amr: SessionRow['amr'];
  userAgent: string | null;
  ip: string | null;
  sessionExpiresAt: Date;
  refreshHash: Buffer;
}


/**
 * The whole sign-in write in one statement (hallpass.complete_sign_in, migration 0012): consume the
 * request, sync the profile as service_role, open the session with its first refresh token digest and
 * log the profile_sync broadcast. The caller wakes realtime after its transaction commits.
 */
export async function completeSignInWrite(q: Queryable, authRequestId: string, w: SignInWrite): Promise<SignInRow> {
  const { rows } = await q.query<Record<string, unknown>>(
    'select * from hallpass.complete_sign_in($1, $2, $3, $4, $5, $6, $7)',
    [authRequestId, w.at, JSON.stringify(w.amr), w.userAgent, w.ip, w.sessionExpiresAt, w.refreshHash],
  );
  if (!rows[0]) throw new Error('sign-in write affected no row: the request was consumed concurrently');
  return toSignInRow(rows[0]);
}

export type VerifyCodeOutcome =
  | { outcome: 'ok'; signIn: SignInRow; state: string | null; redirectTo: string | null }
  | { outcome: 'auth_request_not_found' | 'auth_request_used' | 'otp_expired' }
  /** retryAfter (seconds) when the address's wrong-code budget is spent; absent when the request is locked. */
  | { outcome: 'too_many_attempts'; retryAfter?: number }
  | { outcome: 'otp_invalid'; attemptsRemaining: number };

export interface CodeToVerify extends Omit<SignInWrite, 'at'> {
  authRequestId: string;
  /** The HMAC digest of the code as typed; the database compares it in constant time. */
  presented: Buffer;
}

/** The per-request attempt rule and the per-address wrong-code budget (migration 0015). */
export interface VerifyRules {
  at: Date;
  maxAttempts: number;
  windowSeconds: number;
  budget: { limit: number; periodSeconds: number };
}

// (sign_in).* spreads the hallpass.sign_in composite into columns (all null when not 'ok').
const verifyCodesSql = prepared(`select item, outcome, attempts_remaining, retry_after, state, redirect_to, (sign_in).*
  from hallpass.verify_codes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`);

/**
 * Verifies codes in one statement (hallpass.verify_codes over hallpass.verify_code, migrations 0012,
 * 0013 and 0015): per item, lock the request, check it and its address's wrong-code budget, count a
 * wrong code (committed with the refusal) or complete the sign-in. Items run in request-id order, so
 * concurrent batches lock in one order; outcomes come back in the caller's order.
 */
export async function verifyCodes(
  q: Queryable,
  common: VerifyRules,
  items: readonly CodeToVerify[],
): Promise<VerifyCodeOutcome[]> {
  const order = byRequestId(items);
  const col = <T>(f: (c: CodeToVerify) => T) => order.map((i) => f(items[i]!));
  const { rows } = await q.query<Record<string, unknown>>(
    verifyCodesSql,
    [
      col((c) => c.authRequestId), col((c) => c.presented), common.at, common.maxAttempts, common.windowSeconds,
      col((c) => JSON.stringify(c.amr)), col((c) => c.userAgent), col((c) => c.ip), col((c) => c.sessionExpiresAt), col((c) => c.refreshHash),
      common.budget.limit, common.budget.periodSeconds,
    ],
  );
  const outcomes: VerifyCodeOutcome[] = new Array(items.length);
  for (const row of rows) outcomes[order[(row.item as number) - 1]!] = toOutcome(row);
  return outcomes;
}

/** Item indexes in request-id order (stable), so concurrent batches lock shared requests in one order. */
function byRequestId(items: readonly { authRequestId: string }[]): number[] {
  return items.map((_, i) => i).sort((x, y) => (items[x]!.authRequestId < items[y]!.authRequestId ? -1 : items[x]!.authRequestId > items[y]!.authRequestId ? 1 : x - y));
}

function toOutcome(row: Record<string, unknown>): VerifyCodeOutcome {
  const outcome = row.outcome as string;
  if (outcome === 'ok') {
    return { outcome, signIn: toSignInRow(row), state: row.state as string | null, redirectTo: row.redirect_to as string | null };
  }
  if (outcome === 'otp_invalid') return { outcome, attemptsRemaining: row.attempts_remaining as number };
  if (outcome === 'too_many_attempts') return row.retry_after === null ? { outcome } : { outcome, retryAfter: row.retry_after as number };
  return { outcome } as VerifyCodeOutcome;
}

function toSignInRow(row: Record<string, unknown>): SignInRow {
  const profile = {
    id: row.id, tenant_id: row.tenant_id, email: row.email, name: row.name, metadata: row.metadata,
    last_login: row.last_login, created_at: row.created_at, updated_at: row.updated_at,
  } as ProfileRow;
  const session = {
    id: row.s_id, profile_id: row.id, tenant_id: row.tenant_id, amr: row.s_amr, user_agent: row.s_user_agent, ip: row.s_ip,
    created_at: row.s_created_at, last_seen_at: row.s_last_seen_at, expires_at: row.s_expires_at, revoked_at: row.s_revoked_at,
  } as SessionRow;
  return { profile, created: row.created as boolean, session };
}

export async function replaceSecrets(
  q: Queryable,
  id: string,
  r: { codeHash: Buffer | null; linkHash: Buffer | null; expiresAt: Date },
): Promise<void> {
  await q.query(
    `update hallpass.auth_requests
        set code_hash = $2, link_hash = $3, expires_at = $4, failed_attempts = 0, attempts_window_start = null,
            sends = sends + 1
      where id = $1`,
    [id, r.codeHash, r.linkHash, r.expiresAt],
  );
}

export async function findTenantIdBySlug(q: Queryable, slug: string): Promise<string | undefined> {
  const { rows } = await q.query<{ id: string }>('select id from public.tenants where slug = $1', [slug]);
  return rows[0]?.id;
}

/** A headless verify's success: the request used up, the profile synced, no session. */
export interface HeadlessSignIn {
  email: string;
  state: string | null;
  passwordlessType: PasswordlessType;
  profileId: string;
  created: boolean;
}

export type HeadlessCodeOutcome =
  | { outcome: 'ok'; signIn: HeadlessSignIn }
  | { outcome: 'auth_request_not_found' | 'auth_request_used' | 'too_many_attempts' | 'otp_expired' }
  | { outcome: 'otp_invalid'; attemptsRemaining: number };

export interface HeadlessCodeToVerify {
  authRequestId: string;
  presented: Buffer;
}

function toHeadlessSignIn(row: Record<string, unknown>): HeadlessSignIn {
  return {
    email: row.email as string,
    state: row.state as string | null,
    passwordlessType: row.passwordless_type as PasswordlessType,
    profileId: row.profile_id as string,
    created: row.created as boolean,
  };
}

/**
 * Headless code verifies in one statement (hallpass.verify_codes_headless, migration 0017): the checks
 * and attempt counting of `verifyCodes`, and on success the request is consumed and the profile synced
 * without a session. Items run in request-id order; outcomes come back in the caller's order.
 */
export async function verifyCodesHeadless(
  q: Queryable,
  common: { at: Date; maxAttempts: number; windowSeconds: number },
  items: readonly HeadlessCodeToVerify[],
): Promise<HeadlessCodeOutcome[]> {
  const order = byRequestId(items);
  const { rows } = await q.query<Record<string, unknown>>(
    `select item, outcome, attempts_remaining, email, state, passwordless_type, profile_id, created
       from hallpass.verify_codes_headless($1, $2, $3, $4, $5)`,
    [order.map((i) => items[i]!.authRequestId), order.map((i) => items[i]!.presented), common.at, common.maxAttempts, common.windowSeconds],
  );
  const outcomes: HeadlessCodeOutcome[] = new Array(items.length);
  for (const row of rows) {
    const outcome = row.outcome as string;
    outcomes[order[(row.item as number) - 1]!] =
      outcome === 'ok'
        ? { outcome, signIn: toHeadlessSignIn(row) }
        : outcome === 'otp_invalid'
          ? { outcome, attemptsRemaining: row.attempts_remaining as number }
          : ({ outcome } as HeadlessCodeOutcome);
  }
  return outcomes;
}

/** Consumes a request headless (hallpass.consume_headless): undefined when it was already used. */
export async function consumeHeadless(q: Queryable, authRequestId: string, at: Date): Promise<HeadlessSignIn | undefined> {
  const { rows } = await q.query<Record<string, unknown>>(
    'select email, state, passwordless_type, profile_id, created from hallpass.consume_headless($1, $2)',
    [authRequestId, at],
  );
  return rows[0] ? toHeadlessSignIn(rows[0]) : undefined;
}
