import type { Queryable } from '@hallpass/db';
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

/**
 * Records the request and queues its sealed email in one statement: atomic without a transaction of
 * its own, and one round trip on the hottest path.
 */
export async function insertAuthRequestWithMail(q: Queryable, r: NewAuthRequest, sealedMail: Buffer): Promise<void> {
  await q.query(
    `with request as (
       insert into hallpass.auth_requests
         (id, tenant_id, email, passwordless_type, code_hash, link_hash, binding_hash, state, redirect_to, expires_at, ip, user_agent)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       returning id, email)
     insert into hallpass.mail_outbox (auth_request_id, to_email, payload) select id, email, $13 from request`,
    [r.id, r.tenantId, r.email, r.type, r.codeHash, r.linkHash, r.bindingHash, r.state, r.redirectTo, r.expiresAt, r.ip, r.userAgent, sealedMail],
  );
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

const signInColumns = `id, tenant_id, email, name, metadata, last_login, created_at, updated_at, created,
  s_id, s_amr, s_user_agent, s_ip, s_created_at, s_last_seen_at, s_expires_at, s_revoked_at`;

/**
 * The whole sign-in write in one statement (hallpass.complete_sign_in, migration 0012): consume the
 * request, sync the profile as service_role, open the session with its first refresh token digest and
 * log the profile_sync broadcast. The caller wakes realtime after its transaction commits.
 */
export async function completeSignInWrite(q: Queryable, authRequestId: string, w: SignInWrite): Promise<SignInRow> {
  const { rows } = await q.query<Record<string, unknown>>(
    `select ${signInColumns} from hallpass.complete_sign_in($1, $2, $3, $4, $5, $6, $7)`,
    [authRequestId, w.at, JSON.stringify(w.amr), w.userAgent, w.ip, w.sessionExpiresAt, w.refreshHash],
  );
  if (!rows[0]) throw new Error('sign-in write affected no row: the request was consumed concurrently');
  return toSignInRow(rows[0]);
}

export type VerifyCodeOutcome =
  | { outcome: 'ok'; signIn: SignInRow; state: string | null; redirectTo: string | null }
  | { outcome: 'auth_request_not_found' | 'auth_request_used' | 'too_many_attempts' | 'otp_expired' }
  | { outcome: 'otp_invalid'; attemptsRemaining: number };

/**
 * Verifies a code in one statement (hallpass.verify_code, migration 0012): lock the request, check it,
 * count a wrong code (committed with the refusal) or complete the sign-in. `presented` is the HMAC
 * digest of the code as typed; the database compares it in constant time.
 */
export async function verifyCodeStatement(
  q: Queryable,
  r: { authRequestId: string; presented: Buffer; maxAttempts: number; windowSeconds: number } & SignInWrite,
): Promise<VerifyCodeOutcome> {
  const { rows } = await q.query<Record<string, unknown>>(
    `select outcome, attempts_remaining, state, redirect_to, ${signInColumns}
       from hallpass.verify_code($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [r.authRequestId, r.presented, r.at, r.maxAttempts, r.windowSeconds, JSON.stringify(r.amr), r.userAgent, r.ip, r.sessionExpiresAt, r.refreshHash],
  );
  const row = rows[0]!;
  const outcome = row.outcome as string;
  if (outcome === 'ok') {
    return { outcome, signIn: toSignInRow(row), state: row.state as string | null, redirectTo: row.redirect_to as string | null };
  }
  if (outcome === 'otp_invalid') return { outcome, attemptsRemaining: row.attempts_remaining as number };
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
