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

export async function recordFailedAttempt(q: Queryable, id: string, failedAttempts: number, windowStart: Date): Promise<void> {
  await q.query('update hallpass.auth_requests set failed_attempts = $2, attempts_window_start = $3 where id = $1', [
    id,
    failedAttempts,
    windowStart,
  ]);
}

export async function lockOut(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('update hallpass.auth_requests set locked_at = $2 where id = $1 and locked_at is null', [id, at]);
}

export interface SignInRow {
  profile: ProfileRow;
  created: boolean;
  session: SessionRow;
}

/**
 * The whole sign-in write in one statement (one round trip inside the verify transaction): consume
 * the request, sync the profile as service_role (`sync_profile_on_login`), open the session and store
 * its first refresh token digest.
 */
export async function completeSignInWrite(
  q: Queryable,
  r: { authRequestId: string; at: Date; amr: SessionRow['amr']; userAgent: string | null; ip: string | null; sessionExpiresAt: Date; refreshHash: Buffer },
): Promise<SignInRow> {
  const { rows } = await q.query<Record<string, unknown>>(
    `with consumed as (
       update hallpass.auth_requests set consumed_at = $2 where id = $1 and consumed_at is null returning tenant_id, email
     ), profile as (
       select p.* from consumed c cross join lateral hallpass.sync_profile_on_login(c.tenant_id, c.email, $2) p
     ), session as (
       insert into hallpass.sessions (profile_id, tenant_id, amr, user_agent, ip, expires_at, created_at, last_seen_at)
       select id, tenant_id, $3, $4, $5, $6, $2, $2 from profile
       returning *
     ), token as (
       insert into hallpass.refresh_tokens (token_hash, session_id) select $7, id from session
     )
     select p.id, p.tenant_id, p.email, p.name, p.metadata, p.last_login, p.created_at, p.updated_at, p.created,
            s.id as s_id, s.amr as s_amr, s.user_agent as s_user_agent, s.ip as s_ip, s.created_at as s_created_at,
            s.last_seen_at as s_last_seen_at, s.expires_at as s_expires_at, s.revoked_at as s_revoked_at
       from profile p cross join session s`,
    [r.authRequestId, r.at, JSON.stringify(r.amr), r.userAgent, r.ip, r.sessionExpiresAt, r.refreshHash],
  );
  const row = rows[0];
  if (!row) throw new Error('sign-in write affected no row: the request was consumed concurrently');
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

/**
 * Single use: once consumed_at is set every later verify is refused. The digests stay so a second
 * click on the link can be told "already used" rather than "invalid".
 */
export async function consumeAuthRequest(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('update hallpass.auth_requests set consumed_at = $2 where id = $1', [id, at]);
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
