import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { clientAddress } from './client-ip.ts';
import type { AccessClaims, Authenticated } from '../sessions/sessions.service.ts';

/** What middleware puts on the Hono context for handlers. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** Made by `requestLog` on first use. */
    log?: Logger;
    auth: Authenticated;
    /** Set by `requireAccessToken`: verified claims whose session the handler checks in its own transaction. */
    token: { claims: AccessClaims };
    /** This page's CSP nonce, made by `cspNonce` (http/security.ts) when a page asks for one. */
    secureHeadersNonce?: string;
  };
}

export type AppContext = Context<AppEnv>;

/**
 * The request's logger (request id, method and path bound), made on first use: most requests never
 * log, and a pino child with redaction costs a few microseconds to make.
 */
export function requestLog(c: Context<AppEnv>, base: Logger): Logger {
  let log = c.get('log');
  if (!log) {
    // The path only: query strings can carry link tokens, which must never reach a log.
    log = base.child({ requestId: c.get('requestId'), method: c.req.method, path: c.req.path });
    c.set('log', log);
  }
  return log;
}

/**
 * The caller's address for per-IP limits and session records: the socket's peer, which a client
 * cannot forge, or behind trusted proxies (TRUST_PROXY) the right-most X-Forwarded-For address that
 * is not one of them (see `clientAddress`).
 */
export function clientIp(c: Context, config: Pick<Config, 'trustProxy'>): string | null {
  return clientAddress(config.trustProxy, peerAddress(c), c.req.header('x-forwarded-for'));
}

/** The socket's remote address; undefined when the request did not come over a socket. */
export function peerAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined;
  }
}
