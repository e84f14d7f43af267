import { setClaims, type Queryable } from '@hallpass/db';
import type { Identity } from './identity.ts';
import { restErrors } from './rest-errors.ts';
import type { Statement } from './sql-builder.ts';

/**
 * Switches the open transaction to the identity's role and claims. For a user whose token was only
 * checked for its signature, the same statement also checks that the session row is live: the
 * `exists` is evaluated first and its table privilege was checked when the statement started, as the
 * server's own user, before `set_config` changes the role. One round trip instead of two.
 */
export async function enterRole(tx: Queryable, who: Identity, now: Date): Promise<void> {
  if (who.role !== 'authenticated' || !who.liveSession) return setClaims(tx, who.claims);
  const { rows } = await tx.query<{ live: boolean }>(
    `select exists (select 1 from hallpass.sessions s
                     where s.id = $3 and s.profile_id = $4 and s.revoked_at is null and s.expires_at > $5) as live,
            set_config('role', $1, true), set_config('request.jwt.claims', $2, true)`,
    [who.role, JSON.stringify(who.claims), who.liveSession.id, who.liveSession.profileId, now],
  );
  if (!rows[0]?.live) throw restErrors.jwt('The session has ended; sign in again');
}

/** Runs a statement from the SQL builder: rows touched or read, and their JSON text. */
export async function runStatement(tx: Queryable, s: Statement): Promise<{ n: number; body: string | null }> {
  const { rows } = await tx.query<{ n: number; body: string | null }>(s.text, s.params);
  return rows[0] ?? { n: 0, body: null };
}

export async function runCount(tx: Queryable, s: Statement): Promise<number> {
  const { rows } = await tx.query<{ total: number }>(s.text, s.params);
  return rows[0]?.total ?? 0;
}
