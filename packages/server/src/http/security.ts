import { randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { Config } from '../config/config.ts';
import type { AppEnv } from './context.ts';
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
 * Content-Security-Policy for pages: scripts, styles, fetches and forms from our own origin only,
 * never framed. `cspNonce` adds a per-response nonce for a page's inline script and style.
 */
const csp = (nonce?: string) => {
  const own = nonce ? `'self' 'nonce-${nonce}'` : `'self'`;
  return `default-src 'self'; script-src ${own}; style-src ${own}; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'`;
};

/**
 * The security headers every answer carries (the set hono's secureHeaders sends, with our CSP, DENY
 * framing and no referrer), set before the handler runs on the headers its response is built with.
 *
 * Why not hono's secureHeaders: it sets them after the handler, on the finished response, and makes
 * a CSP nonce for every answer; together with CORS (below) that cost about a tenth of a sign-in's
 * server CPU. Pages that need a nonce ask for one with `cspNonce`.
 */
export function securityHeaders(options: { hsts: boolean }): MiddlewareHandler {
  const headers: Array<[string, string]> = [
    ['content-security-policy', csp()],
    ['cross-origin-resource-policy', 'same-origin'],
    ['cross-origin-opener-policy', 'same-origin'],
    ['origin-agent-cluster', '?1'],
    ['referrer-policy', 'no-referrer'],
    ...(options.hsts ? ([['strict-transport-security', 'max-age=31536000; includeSubDomains']] as Array<[string, string]>) : []),
    ['x-content-type-options', 'nosniff'],
    ['x-dns-prefetch-control', 'off'],
    ['x-download-options', 'noopen'],
    ['x-frame-options', 'DENY'],
    ['x-permitted-cross-domain-policies', 'none'],
    ['x-xss-protection', '0'],
  ];
  return async (c, next) => {
    for (const [name, value] of headers) c.header(name, value);
    await next();
  };
}

/** A fresh nonce for this page's inline script and style, and the CSP that allows exactly it. */
export function cspNonce(c: Context<AppEnv>): string {
  let nonce = c.get('secureHeadersNonce');
  if (!nonce) {
    nonce = randomBytes(16).toString('base64');
    c.set('secureHeadersNonce', nonce);
    c.header('content-security-policy', csp(nonce));
  }
  return nonce;
}

export interface CorsOptions {
  allowedOrigins: readonly string[];
  allowMethods: readonly string[];
  allowHeaders: readonly string[];
  exposeHeaders: readonly string[];
  maxAge: number;
}

/**
 * CORS for the configured origins, with credentials. Preflights go to hono's cors middleware; for
 * the requests themselves the same headers are set here before the handler runs. Hono's middleware
 * sets them on `c.res` before the handler, which makes Hono and node-server build every response
 * twice (a full fetch Response with a body stream), measurable on each browser request.
 */
export function corsHeaders(options: CorsOptions): MiddlewareHandler {
  const allowed = (origin: string) => options.allowedOrigins.includes(origin);
  const preflight = cors({
    origin: (origin) => (allowed(origin) ? origin : null),
    credentials: true,
    allowMethods: [...options.allowMethods],
    allowHeaders: [...options.allowHeaders],
    exposeHeaders: [...options.exposeHeaders],
    maxAge: options.maxAge,
  });
  const expose = options.exposeHeaders.join(',');
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && c.req.method === 'OPTIONS') return preflight(c, next);
    // Answers differ by Origin: caches must keep them apart.
    c.header('vary', 'Origin', { append: true });
    if (origin !== undefined && allowed(origin)) {
      c.header('access-control-allow-origin', origin);
      c.header('access-control-allow-credentials', 'true');
      c.header('access-control-expose-headers', expose);
    }
    await next();
  };
}
