import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { AccessClaims, Authenticated } from '../sessions/sessions.service.ts';

/** What middleware puts on the Hono context for handlers. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    auth: Authenticated;
    /** Set by `requireAccessToken`: verified claims whose session the handler checks in its own transaction. */
    token: { claims: AccessClaims };
    secureHeadersNonce?: string;
  };
}

export type AppContext = Context<AppEnv>;

/**
 * The caller's address. Behind a proxy (TRUST_PROXY=true) the first X-Forwarded-For entry, which the
 * proxy must set; otherwise the socket's peer, which a client cannot forge.
 */
export function clientIp(c: Context, config: Pick<Config, 'trustProxy'>): string | null {
  if (config.trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')?.split(',')[0]?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}
