import type { Claims } from '@hallpass/db';
import type { Context } from 'hono';
import type { Deps } from '../deps.ts';
import { clearSessionCookies, readSessionCookies, setSessionCookies } from '../http/cookies.ts';
import { verifyApiKey, type ApiKeyRole } from '../sessions/api-keys.ts';
import { verifyAppToken } from '../sessions/app-tokens.ts';
import { authenticate, verifyAccessToken, type AccessClaims } from '../sessions/sessions.service.ts';
import { AppError } from '../shared/errors.ts';
import { restErrors } from './rest-errors.ts';

/**
 * Who a data API request runs as. For a user, `liveSession` asks the query's transaction to check
 * that the session row is still live (in the same statement that sets the role, saving a round trip);
 * a session renewed from the refresh cookie was checked already.
 */
export type Identity =
  | { role: 'anon' | 'service_role'; claims: Claims }
  | { role: 'authenticated'; claims: AccessClaims & Claims; liveSession: { id: string; profileId: string } | null };

type IdentityDeps = Pick<Deps, 'config' | 'keys' | 'signing' | 'clock' | 'db' | 'metrics'>;

export interface TokenCache {
  accessToken(token: string): Promise<AccessClaims | null>;
  apiKey(token: string): Promise<ApiKeyRole | null>;
}

/**
 * Remembers signature checks: the same token string always verifies the same way under one key, so
 * an ES256 verification is done once per token, not per request. Expiry is still checked on every
 * hit; revocation is checked per request against the session row. Bounded: cleared when full.
 */
export function createTokenCache(deps: Pick<Deps, 'config' | 'signing' | 'clock'>, max = 10_000): TokenCache {
  const users = new Map<string, AccessClaims>();
  // User tokens are checked here too (is this bearer a key?), so "not a key" is remembered as well.
  const keys = new Map<string, ApiKeyRole | null>();
  const put = <V>(m: Map<string, V>, k: string, v: V) => {
    if (m.size >= max) m.clear();
    m.set(k, v);
  };
  return {
    async accessToken(token) {
      const hit = users.get(token);
      if (hit) {
        if (hit.exp * 1000 > deps.clock.now().getTime()) return hit;
        users.delete(token);
        return null;
      }
      const check = await verifyAccessToken(deps, token);
      if (!check.ok) return null;
      put(users, token, check.claims);
      return check.claims;
    },
    async apiKey(token) {
      const hit = keys.get(token);
      if (hit !== undefined) return hit;
      const role = await verifyApiKey(deps, token);
      put(keys, token, role);
      return role;
    },
  };
}

const keyIdentity = (role: ApiKeyRole, deps: IdentityDeps): Identity => ({ role, claims: { role, iss: deps.config.issuer } });

async function userIdentity(deps: IdentityDeps, tokens: TokenCache, token: string): Promise<Identity> {
  const claims = await tokens.accessToken(token);
  if (!claims) {
    // A token the app's own backend signed (APP_JWT_SECRET): its claims, no Hallpass session.
    const app = await verifyAppToken(deps, token);
    if (app) return { role: 'authenticated', claims: app as unknown as AccessClaims & Claims, liveSession: null };
    throw restErrors.jwt('JWT is invalid or expired');
  }
  return { role: 'authenticated', claims, liveSession: { id: claims.session_id, profileId: claims.sub } };
}

/** The browser's session cookies: a valid access cookie, or a renewal from the refresh cookie. */
async function cookieIdentity(c: Context, deps: IdentityDeps, tokens: TokenCache): Promise<Identity> {
  const cookies = readSessionCookies(c, deps.config);
  if (cookies.accessToken) {
    const claims = await tokens.accessToken(cookies.accessToken);
    if (claims) return { role: 'authenticated', claims, liveSession: { id: claims.session_id, profileId: claims.sub } };
  }
  try {
    const auth = await authenticate(deps, cookies);
    if (auth.renewed) setSessionCookies(c, deps.config, auth.renewed);
    return { role: 'authenticated', claims: auth.claims, liveSession: null };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    clearSessionCookies(c, deps.config);
    throw restErrors.jwt('The session is not valid; sign in again');
  }
}

/**
 * Decides the role as supabase-js and Supabase's gateway do: `Authorization: Bearer` wins; a bearer
 * that is the anon key (what supabase-js sends before anyone signs in) yields to a session cookie, so
 * a signed-in browser using the anon-key client reads as its user; the service key is service_role;
 * any other bearer must be a valid user access token. With no bearer: the session cookie, else the
 * `apikey` header's role. An `apikey` that is not one of our keys is refused outright.
 */
export async function resolveIdentity(c: Context, deps: IdentityDeps, tokens: TokenCache): Promise<Identity> {
  const apikey = c.req.header('apikey');
  const keyRole = apikey ? await tokens.apiKey(apikey) : null;
  if (apikey && !keyRole) throw restErrors.jwt('Invalid API key');
  const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  const hasCookie = () => {
    const s = readSessionCookies(c, deps.config);
    return Boolean(s.accessToken || s.refreshToken);
  };
  if (bearer) {
    const bearerRole = bearer === apikey ? keyRole : await tokens.apiKey(bearer);
    if (bearerRole === 'service_role') return keyIdentity('service_role', deps);
    if (bearerRole === 'anon') return hasCookie() ? cookieIdentity(c, deps, tokens) : keyIdentity('anon', deps);
    return userIdentity(deps, tokens, bearer);
  }
  if (hasCookie()) return cookieIdentity(c, deps, tokens);
  if (keyRole) return keyIdentity(keyRole, deps);
  throw restErrors.noCredentials();
}
