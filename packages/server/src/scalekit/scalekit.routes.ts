import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { requestLog, type AppEnv } from '../http/context.ts';
import { readJson } from '../http/json.ts';
import { AppError } from '../shared/errors.ts';
import { issueClientToken, resolveClientToken, type ClientIdentity } from './clients.service.ts';
import { toRestError, toScalekitError } from './scalekit.errors.ts';
import { resendForClient, sendForClient, verifyForClient } from './scalekit.service.ts';

const template = z.enum(['SIGNIN', 'SIGNUP', 'UNSPECIFIED']).optional();
const sendBody = z.strictObject({
  email: z.string().max(320),
  template,
  magiclink_auth_uri: z.string().max(4096).optional(),
  state: z.string().max(4096).optional(),
  expires_in: z.number().optional(),
  template_variables: z.record(z.string(), z.string()).optional(),
});
const verifyBody = z.strictObject({
  code: z.string().max(64).optional(),
  link_token: z.string().max(256).optional(),
  auth_request_id: z.string().max(128).optional(),
});
const resendBody = z.strictObject({ auth_request_id: z.string().max(128) });

function oauthError(c: Context, status: 400 | 401, error: string) {
  c.header('cache-control', 'no-store');
  if (status === 401) c.header('www-authenticate', 'Basic realm="hallpass"');
  return c.json({ error }, status);
}

/** client_id and client_secret from HTTP Basic (RFC 6749 2.3.1: each form-url-encoded) or the form. */
function clientCredentials(c: Context, form: Record<string, unknown>): { id: string; secret: string } | null {
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    try {
      return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
    } catch {
      return null;
    }
  }
  const id = form['client_id'];
  const secret = form['client_secret'];
  return typeof id === 'string' && typeof secret === 'string' ? { id, secret } : null;
}

/**
 * The Scalekit API's HTTP parts: `POST /oauth/token` (client credentials, as the SDK fetches its
 * token) and the REST shape of the passwordless service for callers without the SDK
 * (`/api/v1/passwordless/email/send|verify|resend`, snake_case JSON, errors as grpc-gateway writes
 * them). Both REST and gRPC go through scalekit.service.ts.
 */
export function scalekitRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  app.post('/oauth/token', async (c) => {
    const type = c.req.header('content-type') ?? '';
    const form: Record<string, unknown> = /^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)
      ? await c.req.parseBody()
      : /^application\/json\s*(;|$)/i.test(type)
        ? ((await c.req.json().catch(() => ({}))) as Record<string, unknown>)
        : {};
    if (form['grant_type'] !== 'client_credentials') return oauthError(c, 400, 'unsupported_grant_type');
    const creds = clientCredentials(c, form);
    const issued = creds ? await issueClientToken(deps, creds.id, creds.secret) : null;
    if (!issued) {
      requestLog(c, deps.log).info({ clientId: creds?.id.slice(0, 40) }, 'oauth: client authentication failed');
      return oauthError(c, 401, 'invalid_client');
    }
    c.header('cache-control', 'no-store');
    return c.json({ access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn, scope: 'passwordless' });
  });

  /** Runs a REST call as its client; failures answer in Scalekit's REST error shape. */
  type Call = { credential?: 'code' | 'link' };
  const rest = (fn: (c: Context<AppEnv>, client: ClientIdentity, call: Call) => Promise<Record<string, unknown>>) =>
    async (c: Context<AppEnv>) => {
      const call: Call = {};
      try {
        const token = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
        const client = token ? await resolveClientToken(deps, token) : null;
        if (!client) throw new AppError('unauthenticated', { message: 'A valid access token from /oauth/token is required.' });
        const body = await fn(c, client, call);
        c.header('cache-control', 'no-store');
        return c.json(body);
      } catch (err) {
        const e = toRestError(toScalekitError(err, requestLog(c, deps.log), call.credential));
        if (e.body.retry_after !== undefined) c.header('retry-after', String(e.body.retry_after));
        if (e.status === 401) c.header('www-authenticate', 'Bearer');
        return c.json(e.body, e.status as ContentfulStatusCode);
      }
    };
  const userAgent = (c: Context) => c.req.header('user-agent') ?? null;

  app.post(
    '/api/v1/passwordless/email/send',
    rest(
      async (c, client) => {
        const b = await readJson(c, sendBody);
        const r = await sendForClient(
          deps,
          client,
          {
            email: b.email,
            template: b.template === 'UNSPECIFIED' ? undefined : b.template,
            magiclinkAuthUri: b.magiclink_auth_uri,
            state: b.state,
            expiresIn: b.expires_in,
            templateVariables: b.template_variables,
          },
          userAgent(c),
        );
        return { auth_request_id: r.authRequestId, expires_at: r.expiresAt, expires_in: r.expiresIn, passwordless_type: r.passwordlessType };
      },
    ),
  );

  app.post(
    '/api/v1/passwordless/email/resend',
    rest(
      async (c, client) => {
        const b = await readJson(c, resendBody);
        const r = await resendForClient(deps, client, b.auth_request_id, userAgent(c));
        return { auth_request_id: r.authRequestId, expires_at: r.expiresAt, expires_in: r.expiresIn, passwordless_type: r.passwordlessType };
      },
    ),
  );

  app.post(
    '/api/v1/passwordless/email/verify',
    rest(
      async (c, client, call) => {
        const b = await readJson(c, verifyBody);
        call.credential = b.code ? 'code' : 'link';
        const v = await verifyForClient(deps, client, { code: b.code, linkToken: b.link_token, authRequestId: b.auth_request_id });
        return { email: v.email, ...(v.state !== null ? { state: v.state } : {}), template: v.template, passwordless_type: v.passwordlessType };
      },
    ),
  );

  return app;
}
