import { jwtVerify, type JWTPayload } from 'jose';
import type { Deps } from '../deps.ts';

/** The claims of a user token the app's own backend signed (the Scalekit guide's "own JWT"). */
export interface AppTokenClaims extends JWTPayload {
  role: 'authenticated';
  email: string;
  exp: number;
}

/**
 * A user token signed by the app's own backend with the shared HS256 secret (APP_JWT_SECRET, what
 * Supabase calls the JWT secret), as the Scalekit + Supabase guide's backend makes after a headless
 * verify. Accepted only when the secret is configured, only HS256 under that secret (never the
 * server's public key), only for role `authenticated` with an `email` and an `exp`. It opens no
 * Hallpass session: it lasts until its `exp`, and RLS decides what its claims may touch.
 */
export async function verifyAppToken(deps: Pick<Deps, 'config' | 'clock'>, token: string): Promise<AppTokenClaims | null> {
  const secret = deps.config.appJwtSecret;
  if (!secret) return null;
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ['HS256'],
      audience: 'authenticated',
      currentDate: deps.clock.now(),
      requiredClaims: ['exp', 'email', 'role'],
    });
    if (payload.role !== 'authenticated' || typeof payload.email !== 'string') return null;
    return payload as AppTokenClaims;
  } catch {
    return null;
  }
}
