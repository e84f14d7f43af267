import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../http/context.ts';
import { readJson } from '../http/json.ts';
import { verifyApiKey } from '../sessions/api-keys.ts';
import { bearerToken } from '../sessions/identity.ts';
import { AppError } from '../shared/errors.ts';
import { insertBroadcasts } from './realtime.repository.ts';

const topic = z.string().min(1).max(255);
const event = z.string().min(1).max(255);
const batchBody = z.object({
  messages: z
    .array(z.object({ topic, event, payload: z.unknown(), private: z.boolean().optional() }))
    .min(1)
    .max(100),
});

/**
 * Server-side broadcasts, Supabase's REST shape: `POST /realtime/v1/api/broadcast` with
 * `{messages: [{topic, event, payload, private}]}`, and `POST .../broadcast/<topic>/events/<event>`
 * with the payload as body (what realtime-js `httpSend` uses). Both answer 202 and need the service
 * key: they can write any user's private topic.
 */
export function realtimeRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  const requireServiceKey = async (c: Context) => {
    const key = bearerToken(c.req.header('authorization')) ?? c.req.header('apikey');
    if (!key) throw new AppError('unauthenticated');
    if ((await verifyApiKey(deps, key)) !== 'service_role') throw new AppError('forbidden');
  };

  app.post('/realtime/v1/api/broadcast', async (c) => {
    await requireServiceKey(c);
    const { messages } = await readJson(c, batchBody);
    await insertBroadcasts(
      deps.db,
      messages.map((m) => ({ topic: m.topic, event: m.event, payload: m.payload ?? null, private: m.private ?? false })),
    );
    return c.body(null, 202);
  });

  app.post('/realtime/v1/api/broadcast/:topic/events/:event', async (c) => {
    await requireServiceKey(c);
    const parsed = z.object({ topic, event }).safeParse({ topic: c.req.param('topic'), event: c.req.param('event') });
    if (!parsed.success) throw new AppError('invalid_request');
    const payload = await readJson(c, z.unknown());
    await insertBroadcasts(deps.db, [
      { topic: parsed.data.topic, event: parsed.data.event, payload: payload ?? null, private: c.req.query('private') === 'true' },
    ]);
    return c.body(null, 202);
  });

  return app;
}
