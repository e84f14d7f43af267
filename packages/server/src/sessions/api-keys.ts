import { SignJWT } from 'jose';
import { checkClaims } from './signing-keys.ts';
import type { Deps } from '../deps.ts';

/** The two API keys, as Supabase has them: `anon` (public, for browsers) and `service_role` (secret). */
export type ApiKeyRole = 'anon' | 'service_role';

export interface ApiKeyClaims {
  iss: string;
  role: ApiKeyRole;
  iat: number;
  exp: number;
}

/**
 * Signs an API key: a long-lived JWT with only a role, signed by the server's key. The anon key may be
 * public (it grants what RLS lets `anon` do, which is nothing on user data); the service key bypasses
 * RLS and must stay on servers.
 */
export async function signApiKey(
  deps: Pick<Deps, 'config' | 'signing' | 'clock'>,
  role: ApiKeyRole,
  ttlSeconds = 10 * 365 * 86_400,
): Promise<string> {
  const iat = Math.floor(deps.clock.now().getTime() / 1000);
  return new SignJWT({ role })
    .setProtectedHeader({ alg: deps.signing.alg, kid: deps.signing.kid, typ: 'JWT' })
    .setIssuer(deps.config.issuer)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(deps.signing.privateKey);
}

/** The role of a valid API key, or null for anything else (user tokens included: they have `aud`). */
export async function verifyApiKey(deps: Pick<Deps, 'config' | 'signing' | 'clock'>, token: string): Promise<ApiKeyRole | null> {
  const payload = deps.signing.verifyJwt(token);
  if (!payload || checkClaims(payload, { now: deps.clock.now(), issuer: deps.config.issuer, required: ['exp', 'role'] }) !== 'ok') return null;
  if (payload.aud !== undefined || payload.sub !== undefined) return null;
  return payload.role === 'anon' || payload.role === 'service_role' ? payload.role : null;
}
