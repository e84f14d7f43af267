import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../http/context.ts';
import { clearSessionCookies, readSessionCookies, setSessionCookies } from '../http/cookies.ts';
import { findProfileById, toUser } from '../profiles/profiles.repository.ts';
import { AppError } from '../shared/errors.ts';
import { listLiveSessions, revokeSessionRow } from './sessions.repository.ts';
import { authenticate, refreshSession, revokeSession, toSessionInfo } from './sessions.service.ts';

/**
 * Requires a live session: the access cookie (renewed from the refresh cookie when expired), or an
 * `Authorization: Bearer` access token for non-browser clients. Puts it on `c.var.auth`.
 */
export function requireAuth(deps: Deps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const tokens = bearer ? { accessToken: bearer, refreshToken: undefined } : readSessionCookies(c, deps.config);
    try {
      const auth = await authenticate(deps, tokens);
      if (auth.renewed) setSessionCookies(c, deps.config, auth.renewed);
      c.set('auth', auth);
    } catch (err) {
      // Dead cookies are cleared so the browser stops sending them.
      if (err instanceof AppError && !bearer && (tokens.accessToken || tokens.refreshToken)) clearSessionCookies(c, deps.config);
      throw err;
    }
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
    return c.json({ user: toUser(profile), session: toSessionInfo(c.var.auth.session), accessTokenExpiresAt });
  });

  // An explicit refresh for SDKs that want a fresh access token before it expires.
  app.post('/api/auth/refresh', async (c) => {
    const { refreshToken } = readSessionCookies(c, deps.config);
    if (!refreshToken) throw new AppError('unauthenticated');
    try {
      const issued = await refreshSession(deps, refreshToken);
      setSessionCookies(c, deps.config, issued);
      return c.json({ session: toSessionInfo(issued.session), expiresAt: new Date(issued.claims.exp * 1000).toISOString() });
    } catch (err) {
      clearSessionCookies(c, deps.config);
      throw err;
    }
  });

  // Logout always clears the cookies; when they belonged to a live session it is revoked first, so
  // copies of the cookies are refused on every instance at once.
  app.post('/api/auth/logout', async (c) => {
    const tokens = readSessionCookies(c, deps.config);
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    try {
      const a = await authenticate(deps, bearer ? { accessToken: bearer, refreshToken: undefined } : tokens);
      await revokeSession(deps, a.session.id, 'logout');
      c.var.log.info({ sessionId: a.session.id }, 'signed out');
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
    await revokeSessionRow(deps.db, id.data, 'revoked_by_user', deps.clock.now());
    if (id.data === c.var.auth.session.id) clearSessionCookies(c, deps.config);
    return c.body(null, 204);
  });

  app.get('/.well-known/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=300');
    return c.json({ keys: [deps.signing.publicJwk] });
  });

  return app;
}
