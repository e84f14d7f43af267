import type { Queryable } from '@hallpass/db';
import type { PasswordlessType } from '@hallpass/protocol';

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

export async function insertAuthRequest(
  q: Queryable,
  r: {
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
  },
): Promise<void> {
  await q.query(
    `insert into hallpass.auth_requests
       (id, tenant_id, email, passwordless_type, code_hash, link_hash, binding_hash, state, redirect_to, expires_at, ip, user_agent)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [r.id, r.tenantId, r.email, r.type, r.codeHash, r.linkHash, r.bindingHash, r.state, r.redirectTo, r.expiresAt, r.ip, r.userAgent],
  );
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

/** Single use: a consumed request's code and link digests are dropped with it. */
export async function consumeAuthRequest(q: Queryable, id: string, at: Date): Promise<void> {
  await q.query('update hallpass.auth_requests set consumed_at = $2, code_hash = null, link_hash = null where id = $1', [id, at]);
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
