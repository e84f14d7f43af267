import { randomFillSync } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
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

/**
 * A CSP nonce source for hono's secureHeaders, in place of its `NONCE`: the same 16 random bytes per
 * request (base64, kept as `secureHeadersNonce` for pages), but taken from a pool of CSPRNG bytes
 * refilled 4 KB at a time (as node's randomUUID does) instead of a WebCrypto call on every request,
 * which every data API answer paid for a nonce no page uses. Each byte is handed out once.
 */
export function cspNonce(poolBytes = 4096): (c: Context) => string {
  const pool = Buffer.alloc(poolBytes);
  let offset = poolBytes;
  return (c) => {
    let nonce = c.get('secureHeadersNonce');
    if (!nonce) {
      if (offset + 16 > poolBytes) {
        randomFillSync(pool);
        offset = 0;
      }
      nonce = pool.toString('base64', offset, offset + 16);
      offset += 16;
      c.set('secureHeadersNonce', nonce);
    }
    return `'nonce-${nonce}'`;
  };
}
