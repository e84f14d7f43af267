import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { requestLog, type AppEnv } from '../http/context.ts';
import { clearSessionCookies, readSessionCookies, setSessionCookies } from '../http/cookies.ts';
import { findProfileById, toUser } from '../profiles/profiles.repository.ts';
import { AppError } from '../shared/errors.ts';
import { bearerToken } from './identity.ts';
import { listLiveSessions } from './sessions.repository.ts';
import { authenticate, checkTokens, refreshSession, revokeSession, toSessionInfo, type IssuedSession } from './sessions.service.ts';

type Tokens = { accessToken: string | undefined; refreshToken: string | undefined };

function requestTokens(c: Context, deps: Deps): { tokens: Tokens; bearer: boolean } {
  const bearer = bearerToken(c.req.header('authorization'));
  if (bearer) return { tokens: { accessToken: bearer, refreshToken: undefined }, bearer: true };
  return { tokens: readSessionCookies(c, deps.config), bearer: false };
}

// Runs `check`, setting renewed cookies; on failure clears dead cookies so the browser stops sending them.
async function withCookieUpkeep<T extends { renewed?: IssuedSession }>(c: Context, deps: Deps, check: (tokens: Tokens) => Promise<T>): Promise<T> {
  const { tokens, bearer } = requestTokens(c, deps);
  try {
    const result = await check(tokens);
    if (result.renewed) setSessionCookies(c, deps.config, result.renewed);
    return result;
  } catch (err) {
    if (err instanceof AppError && !bearer && (tokens.accessToken || tokens.refreshToken)) clearSessionCookies(c, deps.config);
    throw err;
  }
}

/**
 * Requires a live session: the access cookie (renewed from the refresh cookie when expired), or an
 * `Authorization: Bearer` access token for non-browser clients. Puts it on `c.var.auth`.
 */
export function requireAuth(deps: Deps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('auth', await withCookieUpkeep(c, deps, (tokens) => authenticate(deps, tokens)));
    await next();
  };
}

/**
 * Like `requireAuth`, but leaves the live-session check to the handler's one statement
 * (`runAsSessionUser`), which makes it before it sets the claims: one round trip fewer on the
 * hottest reads. Handlers behind this must query only through `runAsSessionUser`.
 */
export function requireAccessToken(deps: Deps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { claims } = await withCookieUpkeep(c, deps, (tokens) => checkTokens(deps, tokens));
    c.set('token', { claims });
    await next();
  };
}

/** Session endpoints (`/api/auth/*`) and the public keys that verify access tokens. */
export function sessionRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  const auth = requireAuth(deps);

  app.get('/api/auth/session', auth, async (c) => {
    const profile = await findProfileById(deps.db, c.var.auth.claims.sub);
    if (!profile) throw new AppError('session_expired');
    // The access token's expiry lets SDKs refresh shortly before it, once for all tabs.
    const accessTokenExpiresAt = new Date(c.var.auth.claims.exp * 1000).toISOString();
    const accessTokenIssuedAt = new Date(c.var.auth.claims.iat * 1000).toISOString();
    const accessTokenId = c.var.auth.claims.jti ?? null;
    return c.json({ user: toUser(profile), session: toSessionInfo(c.var.auth.session), accessTokenExpiresAt, accessTokenIssuedAt, accessTokenId });
  });

  // An explicit refresh for SDKs that want a fresh access token before it expires.
  app.post('/api/auth/refresh', async (c) => {
    const { refreshToken } = readSessionCookies(c, deps.config);
    if (!refreshToken) throw new AppError('unauthenticated');
    try {
      const issued = await refreshSession(deps, refreshToken);
      setSessionCookies(c, deps.config, issued);
      return c.json({
        session: toSessionInfo(issued.session),
        expiresAt: new Date(issued.claims.exp * 1000).toISOString(),
        accessTokenId: issued.claims.jti ?? null,
      });
    } catch (err) {
      clearSessionCookies(c, deps.config);
      throw err;
    }
  });

  // Logout always clears the cookies; when they belonged to a live session it is revoked first, so
  // copies of the cookies are refused on every instance at once.
  app.post('/api/auth/logout', async (c) => {
    const tokens = readSessionCookies(c, deps.config);
    const bearer = bearerToken(c.req.header('authorization'));
    try {
      const a = await authenticate(deps, bearer ? { accessToken: bearer, refreshToken: undefined } : tokens);
      await revokeSession(deps, a.session.id, 'logout');
      requestLog(c, deps.log).info({ sessionId: a.session.id }, 'signed out');
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
    }
    clearSessionCookies(c, deps.config);
    return c.body(null, 204);
  });

  // The signed-in user's devices, and signing one of them out.
  app.get('/api/auth/sessions', auth, async (c) => {
    const rows = await listLiveSessions(deps.db, c.var.auth.claims.sub, deps.clock.now());
    return c.json({
      sessions: rows.map((s) => ({ ...toSessionInfo(s), userAgent: s.user_agent, current: s.id === c.var.auth.session.id })),
    });
  });

  app.delete('/api/auth/sessions/:id', auth, async (c) => {
    const id = z.uuid().safeParse(c.req.param('id'));
    if (!id.success) throw new AppError('not_found');
    const mine = (await listLiveSessions(deps.db, c.var.auth.claims.sub, deps.clock.now())).some((s) => s.id === id.data);
    if (!mine) throw new AppError('not_found');
    await revokeSession(deps, id.data, 'revoked_by_user');
    if (id.data === c.var.auth.session.id) clearSessionCookies(c, deps.config);
    return c.body(null, 204);
  });

  app.get('/.well-known/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=300');
    return c.json({ keys: [deps.signing.publicJwk] });
  });

  return app;
}
