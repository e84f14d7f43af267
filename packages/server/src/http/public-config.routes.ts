import { Hono } from 'hono';
import type { PublicConfig } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { signApiKey } from '../sessions/api-keys.ts';
import type { AppEnv } from './context.ts';

/**
 * `GET /api/config`: what a browser app needs to reach this server. Public by design: the anon key
 * grants only what RLS gives the `anon` role. URLs are relative so they hold behind any proxy.
 */
export function publicConfigRoutes(deps: Pick<Deps, 'config' | 'signing' | 'clock'>) {
  const app = new Hono<AppEnv>();
  let anonKey: Promise<string> | null = null;
  app.get('/api/config', async (c) => {
    anonKey ??= signApiKey(deps, 'anon');
    const body: PublicConfig = { anonKey: await anonKey, realtimeUrl: '/realtime/v1', restUrl: '/rest/v1' };
    c.header('cache-control', 'no-cache');
    return c.json(body);
  });
  return app;
}
