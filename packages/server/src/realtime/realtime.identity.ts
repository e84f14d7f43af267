import type { Deps } from '../deps.ts';
import { verifyApiKey, type ApiKeyRole } from '../sessions/api-keys.ts';
import { findLiveSession } from '../sessions/sessions.repository.ts';
import { verifyAccessToken } from '../sessions/sessions.service.ts';
import type { Identity } from './realtime.hub.ts';

type IdentityDeps = Pick<Deps, 'config' | 'signing' | 'clock' | 'db'>;

export type Resolved = { ok: true; identity: Identity } | { ok: false; reason: string; expired: boolean };

/**
 * A user access token (ours: signature, issuer, audience, expiry) whose session row is still live.
 * Returns null for a token that is one of our API keys (supabase-js sends the anon key as its
 * access token when nobody is signed in): the caller falls back to the cookie or apikey identity.
 */
export async function identityFromToken(deps: IdentityDeps, token: string, source: 'token' | 'cookie'): Promise<Resolved | null> {
  const check = await verifyAccessToken(deps, token);
  if (!check.ok) {
    if (!check.expired && (await verifyApiKey(deps, token))) return null;
    return check.expired
      ? { ok: false, expired: true, reason: 'Token has expired; refresh the session and send a new access_token' }
      : { ok: false, expired: false, reason: 'Invalid access token' };
  }
  const { claims } = check;
  const session = await findLiveSession(deps.db, claims.session_id, deps.clock.now());
  if (!session || session.profile_id !== claims.sub) return { ok: false, expired: false, reason: 'Session has ended; sign in again' };
  return {
    ok: true,
    identity: {
      source,
      claims: { ...claims, role: 'authenticated' },
      claimsJson: JSON.stringify(claims),
      sessionId: session.id,
      sub: claims.sub,
      // A cookie identity lives as long as its session (revocation and the session check end it);
      // a token identity ends with its token unless the client sends a fresh one.
      expiresAt: source === 'token' ? claims.exp * 1000 : null,
    },
  };
}

export function identityFromApiKey(role: ApiKeyRole): Identity {
  const claims = { role };
  return { source: 'apikey', claims, claimsJson: JSON.stringify(claims), sessionId: null, sub: null, expiresAt: null };
}
