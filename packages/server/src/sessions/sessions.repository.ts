import { prepared, type Queryable } from '@hallpass/db';

export interface SessionRow {
  id: string;
  profile_id: string;
  tenant_id: string;
  amr: Array<{ method: 'otp' | 'magic_link'; timestamp: number }>;
  user_agent: string | null;
  ip: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

const sessionColumns = 's.id, s.profile_id, s.tenant_id, s.amr, s.user_agent, s.ip, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at';

export async function insertSession(
  q: Queryable,
  s: { profileId: string; tenantId: string; amr: SessionRow['amr']; userAgent: string | null; ip: string | null; expiresAt: Date },
): Promise<SessionRow> {
  const { rows } = await q.query<SessionRow>(
    `insert into hallpass.sessions as s (profile_id, tenant_id, amr, user_agent, ip, expires_at)
     values ($1, $2, $3, $4, $5, $6) returning ${sessionColumns}`,
    [s.profileId, s.tenantId, JSON.stringify(s.amr), s.userAgent, s.ip, s.expiresAt],
  );
  return rows[0]!;
}

export async function insertRefreshToken(q: Queryable, sessionId: string, tokenHash: Buffer): Promise<void> {
  await q.query('insert into hallpass.refresh_tokens (token_hash, session_id) values ($1, $2)', [tokenHash, sessionId]);
}

/** The session of a live (not revoked, not expired) id, or nothing. */
export async function findLiveSession(q: Queryable, id: string, now: Date): Promise<SessionRow | undefined> {
  const { rows } = await q.query<SessionRow>(
    `select ${sessionColumns} from hallpass.sessions s where s.id = $1 and s.revoked_at is null and s.expires_at > $2`,
    [id, now],
  );
  return rows[0];
}

export interface RefreshTokenRow {
  session_id: string;
  rotated_at: Date | null;
  session: SessionRow;
}

/** Locks the token's row, so two requests exchanging one token are served one after the other. */
export async function lockRefreshToken(q: Queryable, tokenHash: Buffer): Promise<RefreshTokenRow | undefined> {
  const { rows } = await q.query<SessionRow & { token_rotated_at: Date | null }>(
    `select ${sessionColumns}, t.rotated_at as token_rotated_at
       from hallpass.refresh_tokens t join hallpass.sessions s on s.id = t.session_id
      where t.token_hash = $1
      for update of t`,
    [tokenHash],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { token_rotated_at, ...session } = row;
  return { session_id: session.id, rotated_at: token_rotated_at, session };
}

export async function markRefreshTokenRotated(q: Queryable, tokenHash: Buffer, at: Date): Promise<void> {
  await q.query('update hallpass.refresh_tokens set rotated_at = $2 where token_hash = $1', [tokenHash, at]);
}

export async function extendSession(q: Queryable, id: string, now: Date, expiresAt: Date): Promise<void> {
  await q.query('update hallpass.sessions set last_seen_at = $2, expires_at = $3 where id = $1', [id, now, expiresAt]);
}

export async function revokeSessionRow(q: Queryable, id: string, reason: string, at: Date): Promise<boolean> {
  const { rowCount } = await q.query(
    'update hallpass.sessions set revoked_at = $2, revoked_reason = $3 where id = $1 and revoked_at is null',
    [id, at, reason],
  );
  return rowCount > 0;
}

export async function listLiveSessions(q: Queryable, profileId: string, now: Date): Promise<SessionRow[]> {
  const { rows } = await q.query<SessionRow>(
    `select ${sessionColumns} from hallpass.sessions s
      where s.profile_id = $1 and s.revoked_at is null and s.expires_at > $2
      order by s.last_seen_at desc`,
    [profileId, now],
  );
  return rows;
}

/**
 * Runs one statement as the session's user, in one round trip, through hallpass.rest_run (migration
 * 0018): the session-liveness check as the server's role, then role `authenticated` and the claims
 * set locally, then `sql` (which returns one row of (count int, body text); its parameters are
 * `$1[i]` of `params`) under grants and RLS. Returns null, having run nothing, for a dead session.
 */
// rest_run's 13 arguments (migration 0018): no count, not singular, no max-affected, no rollback, no row cap.
const runIfSessionLiveSql = prepared(
  `select live, n, body from hallpass.rest_run('authenticated', $1, $2, $3, $4, $5, $6, null, null, false, null, false, null)`,
);

export async function runIfSessionLive(
  q: Queryable,
  who: { sessionId: string; profileId: string; claimsJson: string; now: Date },
  sql: string,
  params: ReadonlyArray<string | null>,
): Promise<{ n: number; body: string | null } | null> {
  const { rows } = await q.query<{ live: boolean; n: number | null; body: string | null }>(
    runIfSessionLiveSql,
    [who.claimsJson, who.sessionId, who.profileId, who.now, sql, params],
  );
  const row = rows[0];
  return row?.live ? { n: row.n ?? 0, body: row.body } : null;
}
