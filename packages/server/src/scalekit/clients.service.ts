import { randomBytes } from 'node:crypto';
import type { Deps } from '../deps.ts';
import { defaultTenantId, resolveTenant } from '../passwordless/passwordless.service.ts';
import { digest, digestsEqual, generateToken } from '../shared/crypto.ts';
import {
  findLiveClient,
  findTokenClient,
  insertClient,
  insertToken,
  markClientRevoked,
  markTokensRevoked,
  selectClients,
  type ApiClientRow,
} from './clients.repository.ts';

/**
 * API clients: backends that call Hallpass's Scalekit API (`/oauth/token`, then the passwordless
 * service) with a client id and secret, as they would call Scalekit. Secrets and tokens are stored
 * only as HMAC digests and compared in constant time.
 */

type ClientDeps = Pick<Deps, 'db' | 'keys' | 'clock' | 'config'>;

export interface ApiClient {
  id: string;
  name: string;
  tenantId: string;
  createdAt: string;
  revokedAt: string | null;
}

/** The caller of a Scalekit API request, as its access token says. */
export interface ClientIdentity {
  clientId: string;
  tenantId: string;
}

const toClient = (r: ApiClientRow): ApiClient => ({
  id: r.id,
  name: r.name,
  tenantId: r.tenant_id,
  createdAt: r.created_at.toISOString(),
  revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
});

const secretDigest = (deps: Pick<Deps, 'keys'>, clientId: string, secret: string) => digest(deps.keys, `client_secret:${clientId}`, secret);
const tokenDigest = (deps: Pick<Deps, 'keys'>, token: string) => digest(deps.keys, 'client_token', token);

/**
 * Creates a client; the secret is returned once and stored only as a digest.
 * @example const { client, secret } = await createApiClient(deps, { name: 'shop-backend' })
 */
export async function createApiClient(deps: ClientDeps, input: { name: string; tenant?: string | undefined }): Promise<{ client: ApiClient; secret: string }> {
  const name = input.name.trim();
  if (name.length < 1 || name.length > 100) throw new TypeError('a client name is 1 to 100 characters');
  const tenantId = input.tenant === undefined ? defaultTenantId : await resolveTenant(deps, input.tenant);
  const id = `skc_${randomBytes(12).toString('hex')}`;
  const secret = `sks_${generateToken()}`;
  const row = await insertClient(deps.db, { id, name, tenantId, secretHash: secretDigest(deps, id, secret) });
  return { client: toClient(row), secret };
}

export async function listApiClients(deps: Pick<Deps, 'db'>): Promise<ApiClient[]> {
  return (await selectClients(deps.db)).map(toClient);
}

/** Revokes a client: its tokens stop working at once and /oauth/token refuses its secret. */
export function revokeApiClient(deps: Pick<Deps, 'db' | 'clock'>, id: string): Promise<boolean> {
  return markClientRevoked(deps.db, id, deps.clock.now());
}

/** Ends a client's current tokens (the client stays): its SDK gets Unauthenticated and fetches a new one. */
export function revokeApiClientTokens(deps: Pick<Deps, 'db' | 'clock'>, id: string): Promise<number> {
  return markTokensRevoked(deps.db, id, deps.clock.now());
}

/**
 * The client-credentials grant: a fresh opaque token for a live client whose secret matches, or null.
 * Older tokens stay valid: concurrent first calls of one SDK each fetch a token.
 */
export async function issueClientToken(
  deps: ClientDeps,
  clientId: string,
  secret: string,
): Promise<{ accessToken: string; expiresIn: number } | null> {
  if (!/^skc_[0-9a-f]{24}$/.test(clientId) || secret.length > 200) return null;
  const client = await findLiveClient(deps.db, clientId);
  // Digest the presented secret even when there is no such client, so timing does not say which.
  const presented = secretDigest(deps, clientId, secret);
  if (!client || !digestsEqual(client.secret_hash, presented)) return null;
  const accessToken = `skt_${generateToken()}`;
  const at = deps.clock.now();
  const expiresIn = deps.config.apiClientTokenTtl;
  await insertToken(deps.db, { hash: tokenDigest(deps, accessToken), clientId, at, expiresAt: new Date(at.getTime() + expiresIn * 1000) });
  return { accessToken, expiresIn };
}

/**
 * The client behind an access token, or null (unknown, expired or revoked token, revoked client).
 * The lookup is by an HMAC digest the caller cannot compute, so its timing tells nothing.
 */
export async function resolveClientToken(deps: Pick<Deps, 'db' | 'keys' | 'clock'>, token: string): Promise<ClientIdentity | null> {
  if (!/^skt_[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const row = await findTokenClient(deps.db, tokenDigest(deps, token), deps.clock.now());
  return row ? { clientId: row.id, tenantId: row.tenant_id } : null;
}
