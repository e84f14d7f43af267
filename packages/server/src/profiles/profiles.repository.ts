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

/**
 * A statement for `runAsSessionUser` (one row of count and JSON body): under RLS, the profile row of
 * that id if the current claims may see it.
 */
export function selectVisibleProfileStatement(id: string): { sql: string; params: string[] } {
  return {
    sql: `select count(*)::int, (array_agg(row_to_json(p)))[1]::text
            from (select ${profileColumns} from public.profiles where id = ($1)[1]::uuid) p`,
    params: [id],
  };
}

/**
 * A statement for `runAsSessionUser`: under RLS, changes name and/or metadata of that row if the
 * policies allow (else changes nothing) and returns it.
 */
export function updateVisibleProfileStatement(
  id: string,
  patch: { name?: string | null | undefined; metadata?: Record<string, unknown> | undefined },
): { sql: string; params: Array<string | null> } {
  return {
    sql: `with p as (
            update public.profiles
               set name = case when ($1)[2]::boolean then ($1)[3] else name end,
                   metadata = case when ($1)[4]::boolean then ($1)[5]::jsonb else metadata end
             where id = ($1)[1]::uuid
            returning ${profileColumns})
          select count(*)::int, (array_agg(row_to_json(p)))[1]::text from p`,
    params: [id, String(patch.name !== undefined), patch.name ?? null, String(patch.metadata !== undefined), JSON.stringify(patch.metadata ?? {})],
  };
}

/** The row a profile statement returned as JSON, with its timestamps as dates again. */
export function profileFromJson(body: string | null): ProfileRow | undefined {
  if (!body) return undefined;
  const row = JSON.parse(body) as Omit<ProfileRow, 'last_login' | 'created_at' | 'updated_at'> & Record<'last_login' | 'created_at' | 'updated_at', string | null>;
  return {
    ...row,
    last_login: row.last_login === null ? null : new Date(row.last_login),
    created_at: new Date(row.created_at!),
    updated_at: new Date(row.updated_at!),
  };
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
