import { Hono, type Context } from 'hono';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../http/context.ts';
import { clearSessionCookies, setSessionCookies } from '../http/cookies.ts';
import { createIdentityResolver, type Identity, type IdentityResolver } from '../sessions/identity.ts';
import { AppError } from '../shared/errors.ts';
import { createCatalog, type Catalog, type TableInfo } from './catalog.ts';
import { parsePrefer, parseQuery, type ParsedQuery, type Preferences } from './query-parser.ts';
import { fromAppError, fromPgError, isPgError, RestError, restErrors } from './rest-errors.ts';
import { runAs, type RunResult } from './rest.repository.ts';
import {
  bodyColumns,
  buildCount,
  buildDelete,
  buildInsert,
  buildSelect,
  buildUpdate,
  checkWritable,
  conflictColumns,
  type Statement,
} from './sql-builder.ts';

interface Negotiated {
  single: boolean;
  stripNulls: boolean;
}

/** Accept: arrays by default, one object for `application/vnd.pgrst.object+json` (single()). */
function negotiate(accept: string | undefined): Negotiated {
  const a = (accept ?? '').toLowerCase();
  const single = a.includes('application/vnd.pgrst.object+json');
  const known = a === '' || single || /application\/json|application\/vnd\.pgrst\.array\+json|\*\/\*/.test(a);
  if (!known) throw restErrors.mediaType(accept ?? '');
  return { single, stripNulls: a.includes('nulls=stripped') };
}

function schemaOf(c: Context, deps: Pick<Deps, 'config'>, read: boolean): string {
  const exposed = deps.config.restSchemas;
  const asked = c.req.header(read ? 'accept-profile' : 'content-profile');
  if (asked === undefined) return exposed[0]!;
  if (!exposed.includes(asked)) throw restErrors.schema(asked, exposed);
  return asked;
}

async function readRows(c: Context): Promise<Record<string, unknown>[]> {
  if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
    throw new RestError(415, 'PGRST102', 'Send the body as application/json');
  }
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch {
    throw restErrors.invalidBody('Empty or invalid json');
  }
  const rows = Array.isArray(body) ? body : [body];
  if (!rows.every((r) => typeof r === 'object' && r !== null && !Array.isArray(r))) {
    throw restErrors.invalidBody('The body must be an object or an array of objects');
  }
  return rows as Record<string, unknown>[];
}

interface Plan {
  statement: Statement;
  count?: Statement;
  status: number;
  representation: boolean;
}

/** Turns a parsed request into its statement(s); throws RestError for what cannot be run. */
async function plan(c: Context, t: TableInfo, q: ParsedQuery, prefer: Preferences, neg: Negotiated, who: Identity): Promise<Plan> {
  const method = c.req.method;
  if (method === 'GET' || method === 'HEAD') {
    return {
      statement: buildSelect(t, q, { stripNulls: neg.stripNulls }),
      ...(prefer.count ? { count: buildCount(t, q) } : {}),
      status: 200,
      representation: true,
    };
  }
  const representation = prefer.return === 'representation';
  const opts = { prefer, stripNulls: neg.stripNulls, role: who.role };
  if (method === 'POST') {
    const rows = await readRows(c);
    const columns = bodyColumns(t, q, rows);
    const target = prefer.resolution ? conflictColumns(t, q) : [];
    const merged = prefer.resolution === 'merge-duplicates' ? columns.filter((col) => !target.includes(col)) : [];
    const denied = checkWritable(t, who.role, columns, merged);
    if (denied) throw denied;
    return { statement: buildInsert(t, q, columns, JSON.stringify(rows), opts), status: 201, representation };
  }
  if (method === 'PATCH') {
    const rows = await readRows(c);
    if (rows.length !== 1) throw restErrors.invalidBody('PATCH takes one object');
    const columns = bodyColumns(t, q, rows);
    const denied = checkWritable(t, who.role, [], columns);
    if (denied) throw denied;
    if (!columns.length) throw restErrors.invalidBody('Nothing to update: the body names no column');
    return { statement: buildUpdate(t, q, columns, JSON.stringify(rows[0]), opts), status: representation ? 200 : 204, representation };
  }
  if (method === 'DELETE') return { statement: buildDelete(t, q, opts), status: representation ? 200 : 204, representation };
  throw restErrors.method(method);
}

/** Finds the table, reading the catalog again once if a name in the request is new to the cache. */
async function planFresh(c: Context, catalog: Catalog, schema: string, name: string, build: (t: TableInfo) => Promise<Plan>): Promise<Plan> {
  const t = await catalog.table(schema, name);
  if (!t) throw restErrors.table(schema, name);
  try {
    return await build(t);
  } catch (err) {
    // A column added, or a privilege granted, since the entry was cached: look once more.
    if (!(err instanceof RestError) || (err.code !== 'PGRST204' && err.code !== '42501')) throw err;
    catalog.forget(schema, name);
    const again = await catalog.table(schema, name);
    if (!again) throw restErrors.table(schema, name);
    return build(again);
  }
}

function respond(c: Context, status: number, body: string | null, headers: Record<string, string>) {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  if (body === null) return c.body(null, status as 201 | 204);
  return c.body(body, status as 200, { 'content-type': headers['content-type'] ?? 'application/json; charset=utf-8' });
}

function rangeHeader(offset: number, n: number, total: number | undefined): string {
  const range = n > 0 ? `${offset}-${offset + n - 1}` : '*';
  return `${range}/${total ?? '*'}`;
}

/** The caller of a data API request, or the PostgREST-shaped 401 for why there is none. */
async function requestIdentity(c: Context, deps: Pick<Deps, 'config'>, identities: IdentityResolver): Promise<Identity> {
  const resolved = await identities.request(c);
  if (resolved.ok) {
    const who = resolved.identity;
    if (who.kind === 'user' && who.renewed) setSessionCookies(c, deps.config, who.renewed);
    return who;
  }
  switch (resolved.refusal) {
    case 'invalid_api_key':
      throw restErrors.jwt('Invalid API key');
    case 'invalid_token':
      throw restErrors.jwt('JWT is invalid or expired');
    case 'invalid_session':
      // Dead cookies are cleared so the browser stops sending them.
      clearSessionCookies(c, deps.config);
      throw restErrors.jwt('The session is not valid; sign in again');
    case 'no_credentials':
      throw restErrors.noCredentials();
  }
}

/**
 * `/rest/v1/<table>`: the PostgREST dialect supabase-js speaks, over the tables of the exposed schemas.
 * Every statement runs in a transaction switched to the caller's role with its claims set, so what a
 * request may read or change is decided by Postgres (grants and RLS policies), never here.
 */
export function restRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  const catalog = createCatalog(deps.db);
  const identities = createIdentityResolver(deps);

  // Errors become PostgREST-shaped responses right here rather than in a sub-app onError: Hono wraps
  // a sub-app with its own error handler in a way that makes node-server build a full Response (and a
  // ReadableStream) per request, a cost every read on the hot path would pay.
  const restError = (c: Context, err: unknown) => {
    const rest = err instanceof RestError ? err : err instanceof AppError ? fromAppError(err) : null;
    if (!rest) throw err;
    if (rest.status === 401) c.header('www-authenticate', 'Bearer');
    return c.json(rest.toBody(), rest.status as 400);
  };

  const serve = async (c: Context, name: string) => {
    const method = c.req.method;
    const read = method === 'GET' || method === 'HEAD';
    const neg = negotiate(c.req.header('accept'));
    const schema = schemaOf(c, deps, read);
    const who = await requestIdentity(c, deps, identities);
    const q = parseQuery(new URL(c.req.url).searchParams);
    const prefer = parsePrefer(c.req.header('prefer'));
    const p = await planFresh(c, catalog, schema, name, (t) => plan(c, t, q, prefer, neg, who));

    let result: RunResult;
    try {
      result = await runAs(deps.db, who, deps.clock.now(), { statement: p.statement, count: p.count, expectOne: neg.single });
    } catch (err) {
      if (!isPgError(err)) throw err;
      if (err.code === 'HP116') throw restErrors.singular(Number(err.detail ?? 0));
      if (err.code === '42P01' || err.code === '42703') catalog.forget(schema, name);
      throw fromPgError(err, who.role);
    }

    const headers: Record<string, string> = {};
    if (read) headers['content-range'] = rangeHeader(q.offset ?? 0, result.n, result.total ?? undefined);
    else headers['content-range'] = `*/${result.n}`;
    const applied = [prefer.return !== 'minimal' ? `return=${prefer.return}` : '', prefer.resolution ?? '', prefer.count ? `count=${prefer.count}` : '']
      .filter(Boolean)
      .join(', ');
    if (applied) headers['preference-applied'] = applied;
    if (!p.representation || result.body === null) return respond(c, p.status === 200 && !read ? 204 : p.status, null, headers);
    if (neg.single) {
      headers['content-type'] = 'application/vnd.pgrst.object+json; charset=utf-8';
      // Exactly one element: `[{...}]` -> `{...}`.
      return respond(c, p.status, result.body.slice(1, -1), headers);
    }
    return respond(c, p.status, result.body, headers);
  };

  app.all('/rest/v1/:table', (c) => serve(c, c.req.param('table')).catch((err: unknown) => restError(c, err)));
  const badPath = (c: Context) => restError(c, new RestError(404, 'PGRST125', 'Invalid path specified in request URL'));
  app.all('/rest/v1/*', badPath);
  app.all('/rest/v1', badPath);

  return app;
}
