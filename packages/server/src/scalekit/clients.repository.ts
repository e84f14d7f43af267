import type { Queryable } from '@hallpass/db';

export interface ApiClientRow {
  id: string;
  name: string;
  tenant_id: string;
  created_at: Date;
  revoked_at: Date | null;
}

export async function insertClient(q: Queryable, c: { id: string; name: string; tenantId: string; secretHash: Buffer }): Promise<ApiClientRow> {
  const { rows } = await q.query<ApiClientRow>(
    `insert into hallpass.api_clients (id, name, tenant_id, secret_hash) values ($1, $2, $3, $4)
     returning id, name, tenant_id, created_at, revoked_at`,
    [c.id, c.name, c.tenantId, c.secretHash],
  );
  return rows[0]!;
}

export async function selectClients(q: Queryable): Promise<ApiClientRow[]> {
  const { rows } = await q.query<ApiClientRow>('select id, name, tenant_id, created_at, revoked_at from hallpass.api_clients order by created_at, id');
  return rows;
}

/** Marks the client revoked; its tokens stop working with it. False when no live client has that id. */
export async function markClientRevoked(q: Queryable, id: string, at: Date): Promise<boolean> {
  const { rows } = await q.query('update hallpass.api_clients set revoked_at = $2 where id = $1 and revoked_at is null returning id', [id, at]);
  return rows.length > 0;
}

/** Ends a client's live tokens (a leaked token); the SDK fetches a new one at its next call. */
export async function markTokensRevoked(q: Queryable, clientId: string, at: Date): Promise<number> {
  const { rows } = await q.query(
    'update hallpass.api_client_tokens set revoked_at = $2 where client_id = $1 and revoked_at is null and expires_at > $2 returning 1',
    [clientId, at],
  );
  return rows.length;
}

export async function findLiveClient(q: Queryable, id: string): Promise<{ id: string; tenant_id: string; secret_hash: Uint8Array } | undefined> {
  const { rows } = await q.query<{ id: string; tenant_id: string; secret_hash: Uint8Array }>(
    'select id, tenant_id, secret_hash from hallpass.api_clients where id = $1 and revoked_at is null',
    [id],
  );
  return rows[0];
}

/** Stores a new token's digest, and deletes tokens that ended over a day ago (the table stays small). */
export async function insertToken(q: Queryable, t: { hash: Buffer; clientId: string; at: Date; expiresAt: Date }): Promise<void> {
  await q.query(
    `with pruned as (delete from hallpass.api_client_tokens where expires_at < $3::timestamptz - interval '1 day')
     insert into hallpass.api_client_tokens (token_hash, client_id, created_at, expires_at) values ($1, $2, $3, $4)`,
    [t.hash, t.clientId, t.at, t.expiresAt],
  );
}

/** The live client behind a live token, found by the token's digest. */
export async function findTokenClient(q: Queryable, hash: Buffer, at: Date): Promise<{ id: string; tenant_id: string } | undefined> {
  const { rows } = await q.query<{ id: string; tenant_id: string }>(
    `select c.id, c.tenant_id from hallpass.api_client_tokens t join hallpass.api_clients c on c.id = t.client_id
      where t.token_hash = $1 and t.revoked_at is null and t.expires_at > $2 and c.revoked_at is null`,
    [hash, at],
  );
  return rows[0];
}

export interface ClientRequestRow {
  client_id: string;
  template: 'SIGNIN' | 'SIGNUP' | null;
  template_variables: Record<string, string>;
  magiclink_auth_uri: string | null;
  expires_in: number;
}

export async function insertClientRequest(q: Queryable, authRequestId: string, r: ClientRequestRow): Promise<void> {
  await q.query(
    `insert into hallpass.api_client_requests (auth_request_id, client_id, template, template_variables, magiclink_auth_uri, expires_in)
     values ($1, $2, $3, $4, $5, $6)`,
    [authRequestId, r.client_id, r.template, JSON.stringify(r.template_variables), r.magiclink_auth_uri, r.expires_in],
  );
}

export async function findClientRequest(q: Queryable, authRequestId: string): Promise<ClientRequestRow | undefined> {
  const { rows } = await q.query<ClientRequestRow>(
    'select client_id, template, template_variables, magiclink_auth_uri, expires_in from hallpass.api_client_requests where auth_request_id = $1',
    [authRequestId],
  );
  return rows[0];
}
