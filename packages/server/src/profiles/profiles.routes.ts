import { Hono } from 'hono';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../http/context.ts';
import { readJson } from '../http/json.ts';
import { requireAccessToken } from '../sessions/sessions.routes.ts';
import { runAsSessionUser } from '../sessions/sessions.service.ts';
import { AppError } from '../shared/errors.ts';
import { profileFromJson, selectVisibleProfileStatement, toUser, updateVisibleProfileStatement } from './profiles.repository.ts';

const patchBody = z
  .strictObject({
    name: z.string().trim().max(200).nullable().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((b) => b.name !== undefined || b.metadata !== undefined, 'give name or metadata');

/**
 * The signed-in user's own profile. Both handlers run one statement as role `authenticated` with the
 * session's claims (`runAsSessionUser`); the row they get or change is whatever RLS allows, so a bug
 * here cannot leak another row.
 */
export function profileRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.use('/api/profile', requireAccessToken(deps));

  app.get('/api/profile', async (c) => {
    const { claims } = c.var.token;
    const { sql, params } = selectVisibleProfileStatement(claims.sub);
    const row = profileFromJson((await runAsSessionUser(deps, claims, sql, params)).body);
    if (!row) throw new AppError('not_found');
    return c.json({ profile: toUser(row) });
  });

  app.patch('/api/profile', async (c) => {
    const body = await readJson(c, patchBody);
    if (body.metadata && JSON.stringify(body.metadata).length > 8000) {
      throw new AppError('invalid_request', { details: { issues: [{ path: 'metadata', message: 'at most 8 KB' }] } });
    }
    const { claims } = c.var.token;
    const { sql, params } = updateVisibleProfileStatement(claims.sub, body);
    const row = profileFromJson((await runAsSessionUser(deps, claims, sql, params)).body);
    if (!row) throw new AppError('not_found');
    return c.json({ profile: toUser(row) });
  });

  return app;
}
