import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { bodyLimit } from 'hono/body-limit';
import { isDatabaseUnavailable } from '@hallpass/db';
import { errorCodes } from '@hallpass/protocol';
import type { Deps } from './deps.ts';
import { requestLog, type AppEnv } from './http/context.ts';
import { homeRoutes } from './http/home.ts';
import { publicConfigRoutes } from './http/public-config.routes.ts';
import { corsHeaders, noStore, originCheck, securityHeaders } from './http/security.ts';
import { hasBuiltApp, staticAppRoutes } from './http/static-app.ts';
import { devMailboxRoutes } from './mail/dev-mailbox.routes.ts';
import { metricsRoutes } from './metrics/metrics.routes.ts';
import { passwordlessRoutes } from './passwordless/passwordless.routes.ts';
import { profileRoutes } from './profiles/profiles.routes.ts';
import { realtimeRoutes } from './realtime/realtime.routes.ts';
import { fromAppError } from './rest/rest-errors.ts';
import { restRoutes } from './rest/rest.routes.ts';
import { scalekitRoutes } from './scalekit/scalekit.routes.ts';
import { sessionRoutes } from './sessions/sessions.routes.ts';
import { AppError } from './shared/errors.ts';

export interface AppState {
  /** Set once migrations ran and cleared when shutdown begins; /readyz answers 503 while false. */
  ready: boolean;
}

/** /readyz waits this long for the database before answering not ready: a probe never hangs. */
const readyTimeoutMs = 2000;

/** Composes the features into one Hono app. No port, no env: tests call `app.request()`. */
export function createApp(deps: Deps, state: AppState = { ready: true }) {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const requestId = randomUUID();
    c.set('requestId', requestId);
    c.header('x-request-id', requestId);
    await next();
    deps.metrics.httpResponse(c.res.status);
  });

  app.use(securityHeaders({ hsts: deps.config.secureCookies }));
  app.use(
    corsHeaders({
      allowedOrigins: deps.config.allowedOrigins,
      allowMethods: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'],
      allowHeaders: ['content-type', 'authorization', 'apikey', 'x-client-info', 'prefer', 'accept-profile', 'content-profile', 'range', 'x-retry-count'],
      exposeHeaders: ['retry-after', 'x-request-id', 'content-range', 'preference-applied'],
      maxAge: 600,
    }),
  );
  app.use(noStore());
  app.use(originCheck(deps.config));
  const maxBody = 16 * 1024;
  const limitBody = bodyLimit({
    maxSize: maxBody,
    onError: () => {
      throw new AppError('body_too_large');
    },
  });
  // GET and HEAD carry no body. A body with Content-Length (and no Transfer-Encoding) is judged by that
  // header, which Node's parser holds the body to; only chunked bodies need hono's streaming check.
  // That check touches `c.req.raw.body`, making node-server build a full Request, which costs a
  // measurable share of CPU per sign-in.
  app.use((c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxBody) throw new AppError('body_too_large');
      return next();
    }
    return limitBody(c, next);
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    if (!state.ready || !(await databaseAnswers(deps, readyTimeoutMs))) throw new AppError('not_ready');
    return c.json({ ok: true });
  });
  app.route('/', metricsRoutes(deps));

  app.route('/', passwordlessRoutes(deps));
  app.route('/', sessionRoutes(deps));
  app.route('/', profileRoutes(deps));
  app.route('/', publicConfigRoutes(deps));
  app.route('/', realtimeRoutes(deps));
  app.route('/', restRoutes(deps));
  app.route('/', scalekitRoutes(deps));
  if (deps.config.mail.devMailbox) app.route('/', devMailboxRoutes(deps));
  // A built app (APP_STATIC_DIR, e.g. the holiday-sale example) replaces the tiny built-in page.
  if (hasBuiltApp(deps.config.appStaticDir)) app.route('/', staticAppRoutes(deps.config.appStaticDir));
  else app.route('/', homeRoutes(deps));

  app.notFound((c) => errorResponse(c, new AppError('not_found')));

  // The one place errors become HTTP. AppErrors carry their code; anything else is ours: logged with
  // the request id, answered as `internal` with nothing of its internals.
  app.onError((err, c) => {
    if (err instanceof AppError) return errorResponse(c, err);
    // A lost or refused database connection is an outage to wait out (503), not a bug of ours (500).
    if (isDatabaseUnavailable(err)) {
      deps.metrics.databaseUnavailable();
      requestLog(c, deps.log).warn({ err: String(err) }, 'database unavailable');
      return errorResponse(c, new AppError('database_unavailable', { retryAfter: 1 }));
    }
    requestLog(c, deps.log).error({ err }, 'unhandled error');
    return c.json({ error: { code: 'internal', message: errorCodes.internal.message, requestId: c.var.requestId } }, 500);
  });

  return app;
}

export type App = ReturnType<typeof createApp>;

/** Whether `select 1` answers within `ms`; false on an error or a timeout, never a hang. */
async function databaseAnswers(deps: Pick<Deps, 'db'>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([deps.db.query('select 1').then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorResponse(c: Context, err: AppError) {
  if (err.retryAfter !== undefined) c.header('retry-after', String(err.retryAfter));
  if (err.status === 401) c.header('www-authenticate', 'Bearer');
  // The data API answers in PostgREST's error shape, also for shared middleware (origin, body size).
  if (c.req.path.startsWith('/rest/v1')) return c.json(fromAppError(err).toBody(), err.status as ContentfulStatusCode);
  const body = {
    error: {
      code: err.code,
      message: err.message,
      ...err.details,
      ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
    },
  };
  return c.json(body, err.status as ContentfulStatusCode);
}
