import type { Queryable } from '@hallpass/db';
import type { User } from '@hallpass/protocol';

export interface ProfileRow {
  id: string;
  tenant_id: string;
  email: string;
  name: string | null;
  metadata: Record<string, unknown>;
  last_login: Date | null;
  created_at: Date;
  updated_at: Date;
}

const profileColumns = 'id, tenant_id, email, name, metadata, last_login, created_at, updated_at';

/**
 * The sign-in sync, as service_role (the SQL function is owned by it): creates the profile on first
 * login, else stamps last_login. `created` tells sign-up from sign-in.
 */
export async function upsertProfileOnLogin(
  q: Queryable,
  tenantId: string,
  email: string,
  at: Date,
): Promise<{ profile: ProfileRow; created: boolean }> {
  const { rows } = await q.query<ProfileRow & { created: boolean }>(
    `select ${profileColumns}, created from hallpass.sync_profile_on_login($1, $2, $3)`,
    [tenantId, email, at],
  );
  const { created, ...profile } = rows[0]!;
  return { profile, created };
}

/** Under RLS: whatever profile rows the current claims may see (their own, or none). */
export async function selectVisibleProfile(q: Queryable, id: string): Promise<ProfileRow | undefined> {
  const { rows } = await q.query<ProfileRow>(`select ${profileColumns} from public.profiles where id = $1`, [id]);
  return rows[0];
}

/** Under RLS: changes name and/or metadata of the row if the policies allow; else changes nothing. */
export async function updateVisibleProfile(
  q: Queryable,
  id: string,
  patch: { name?: string | null | undefined; metadata?: Record<string, unknown> | undefined },
): Promise<ProfileRow | undefined> {
  const { rows } = await q.query<ProfileRow>(
    `update public.profiles
        set name = case when $2 then $3 else name end,
            metadata = case when $4 then $5::jsonb else metadata end
      where id = $1
      returning ${profileColumns}`,
    [id, patch.name !== undefined, patch.name ?? null, patch.metadata !== undefined, JSON.stringify(patch.metadata ?? {})],
  );
  return rows[0];
}

/** The server's own read (no RLS; never used for client-facing queries). */
export async function findProfileById(q: Queryable, id: string): Promise<ProfileRow | undefined> {
  const { rows } = await q.query<ProfileRow>(`select ${profileColumns} from public.profiles where id = $1`, [id]);
  return rows[0];
}

export function toUser(row: ProfileRow): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    metadata: row.metadata,
    tenantId: row.tenant_id,
    lastLogin: row.last_login?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
