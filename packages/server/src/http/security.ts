import type { MiddlewareHandler } from 'hono';
import type { Config } from '../config/config.ts';
import { AppError } from '../shared/errors.ts';

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cookie-authenticated writes must come from our own pages or a configured origin. Every non-GET is
 * checked: an Origin header must be on the allow-list; without Origin, a browser's Sec-Fetch-Site
 * must not say cross-site. Requests with neither header are not from a browser and carry no ambient
 * cookies an attacker could borrow.
 */
export function originCheck(config: Pick<Config, 'allowedOrigins'>): MiddlewareHandler {
  const allowed = new Set(config.allowedOrigins);
  return async (c, next) => {
    if (!safeMethods.has(c.req.method)) {
      const origin = c.req.header('origin');
      const site = c.req.header('sec-fetch-site');
      // Pages served with Referrer-Policy: no-referrer (ours) make browsers send `Origin: null` on
      // form posts; the browser-set Sec-Fetch-Site then still says whether it came from our own page.
      const sameOriginNull = origin === 'null' && site === 'same-origin';
      if (origin !== undefined && !sameOriginNull) {
        if (!allowed.has(origin)) throw new AppError('csrf_rejected');
      } else if (site !== undefined && site !== 'same-origin' && site !== 'none') {
        throw new AppError('csrf_rejected');
      }
    }
    await next();
  };
}

/**
 * Paths whose answers carry sessions, codes or a user's data: sign-in and session endpoints, the
 * magic-link confirm page, token endpoints, the data API and the dev mailbox.
 */
export const noStorePaths = ['/api/auth', '/api/profile', '/passwordless', '/oauth', '/rest/v1', '/dev/mailbox'] as const;

/**
 * `Cache-Control: no-store` on every answer under `paths` (errors and redirects too): a shared proxy
 * or the browser's back/forward cache must never keep a session, a user or a sign-in page. Set before
 * the handler runs, on the headers every response of this request is built with.
 */
export function noStore(paths: readonly string[] = noStorePaths): MiddlewareHandler {
  const under = (path: string) => paths.some((p) => path === p || path.startsWith(`${p}/`));
  return async (c, next) => {
    if (under(c.req.path)) c.header('cache-control', 'no-store');
    await next();
  };
}
