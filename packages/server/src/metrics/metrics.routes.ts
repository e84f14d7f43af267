import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../http/context.ts';
import { AppError } from '../shared/errors.ts';

/** SHA-256 both sides first: equal lengths for timingSafeEqual, and nothing learnt from the length. */
function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * `GET /metrics` in the Prometheus text format, as `config.metrics.access` says: open (loopback, no
 * proxy), behind `Authorization: Bearer <METRICS_TOKEN>`, or not served at all (404).
 */
export function metricsRoutes(deps: Pick<Deps, 'config' | 'metrics'>) {
  const app = new Hono<AppEnv>();
  const { access, token } = deps.config.metrics;
  if (access === 'off') return app;
  app.get('/metrics', async (c) => {
    if (access === 'token') {
      const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
      if (!bearer || !tokenMatches(bearer, token!)) throw new AppError('unauthenticated');
    }
    return c.body(await deps.metrics.scrape(), 200, { 'content-type': deps.metrics.contentType, 'cache-control': 'no-store' });
  });
  return app;
}
