import { Hono, type Context } from 'hono';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../http/context.ts';
import { isDatabaseUnavailable } from '@hallpass/db';
import { AppError } from '../shared/errors.ts';
import { createCatalog, type TableInfo } from './catalog.ts';
import { parsePrefer, parseQuery, type Preferences } from './query-parser.ts';
import { fromAppError, fromPgError, isPgError, RestError, restErrors } from './rest-errors.ts';
import { runAs, type RunOptions, type RunResult } from './rest.repository.ts';
import { buildRead, conditionsOf, resolveTree, rootAlias, tableRef, type Node, type Params, type Statement } from './sql-builder.ts';
import { buildCall, chooseFunction, resultTable } from './sql-rpc.ts';
import { bodyColumns, buildDelete, buildInsert, buildUpdate, checkPut, checkWritable, conflictColumns, type WriteOptions } from './sql-writes.ts';
import { clearSessionCookies, setSessionCookies } from '../http/cookies.ts';
import { createIdentityResolver, type Identity, type IdentityResolver } from '../sessions/identity.ts';

interface Negotiated {
  format: 'json' | 'object' | 'csv';
  stripNulls: boolean;
}

/** Accept: arrays by default; one object for vnd.pgrst.object+json (single()); CSV for text/csv. */
function negotiate(accept: string | undefined): Negotiated {
  const a = (accept ?? '').toLowerCase();
  const stripNulls = a.includes('nulls=stripped');
  if (a.includes('application/vnd.pgrst.object')) return { format: 'object', stripNulls };
  if (a === '' || /application\/json|application\/vnd\.pgrst\.array|\*\/\*|application\/\*/.test(a)) return { format: 'json', stripNulls };
  if (a.includes('text/csv')) return { format: 'csv', stripNulls: false };
  throw restErrors.mediaType(accept ?? '');
}

function schemaOf(c: Context, deps: Pick<Deps, 'config'>, read: boolean): string {
  const exposed = deps.config.restSchemas;
  const asked = c.req.header(read ? 'accept-profile' : 'content-profile');
  if (asked === undefined) return exposed[0]!;
  if (!exposed.includes(asked)) throw restErrors.schema(asked, exposed);
  return asked;
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? 'application/json')) {
    throw new RestError(415, 'PGRST102', 'Send the body as application/json');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw restErrors.invalidBody('Empty or invalid json');
  }
}

async function readRows(c: Context): Promise<Record<string, unknown>[]> {
  const body = await readJson(c);
  const rows = Array.isArray(body) ? body : [body];
  if (!rows.every((r) => typeof r === 'object' && r !== null && !Array.isArray(r))) {
    throw restErrors.invalidBody('All object keys must match');
  }
  return rows as Record<string, unknown>[];
}

/** `Range: 0-9` (Range-Unit items): offset and limit for a read without its own. */
function parseRange(c: Context): { offset: number; limit?: number } | undefined {
  const raw = c.req.header('range');
  if (!raw) return undefined;
  const m = /^(?:items=)?\s*(\d{1,9})-(\d{0,9})\s*$/.exec(raw);
  if (!m) return undefined;
  const lower = Number(m[1]);
  if (m[2] === '') return { offset: lower };
  const upper = Number(m[2]);
  if (lower > upper) throw restErrors.range('The lower boundary must be lower than or equal to the upper boundary in the Range header.');
  return { offset: lower, limit: upper - lower + 1 };
}

/** JSON rows as CSV: a header line of the first row's keys, then one line per row (RFC 4180 quoting). */
function toCsv(body: string): string {
  const rows = JSON.parse(body) as Record<string, unknown>[] | Record<string, unknown>;
  const list = Array.isArray(rows) ? rows : [rows];
  if (!list.length) return '';
  const keys = Object.keys(list[0]!);
  const cell = (v: unknown) => {
    if (v === null || v === undefined) return '';
    const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [keys.map(cell).join(','), ...list.map((r) => keys.map((k) => cell(r[k])).join(','))].join('\n');
}

interface Plan {
  schema: string;
  statement: Statement;
  count?: Statement;
  /** 200 for reads, 201 for inserts, ... ; upserts decide between 200 and 201 from what they did. */
  status: number;
  representation: boolean;
  upsert: boolean;
  singular: boolean;
  location?: boolean;
  /** The answer of a function that does not return a set is a value or an object, not an array. */
  scalarBody?: boolean;
  void?: boolean;
}

function appliedPreferences(p: Preferences, write: boolean): string {
  return [
    write && p.return !== 'minimal' ? `return=${p.return}` : '',
    p.resolution ?? '',
    p.count ? `count=${p.count}` : '',
    p.missingDefault ? 'missing=default' : '',
    p.rollback ? 'tx=rollback' : '',
    p.strict ? 'handling=strict' : '',
    p.strict && p.maxAffected !== undefined ? `max-affected=${p.maxAffected}` : '',
    p.singleObject ? 'params=single-object' : '',
  ]
    .filter(Boolean)
    .join(', ');
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
 * `/rest/v1/<table>` and `/rest/v1/rpc/<fn>`: the PostgREST dialect supabase-js speaks, over the
 * tables and functions of the exposed schemas. Every statement runs in a transaction switched to the
 * caller's role with its claims set, so what a request may read, change or call is decided by
 * Postgres (grants, EXECUTE privileges and RLS policies), never here.
 */
export function restRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  const catalog = createCatalog(deps.db);
  const identities = createIdentityResolver(deps);
  const maxRows = deps.config.restMaxRows;
  // `NOTIFY pgrst, 'reload schema'` (and Hallpass's migrations, which send it) empty the schema cache.
  deps.db
    .listen('pgrst', (payload) => {
      if (payload === '' || payload === 'reload schema') catalog.clear();
    })
    .catch((err: unknown) => deps.log.warn({ err }, 'data API: cannot listen for schema reloads'));

  // Errors become PostgREST-shaped responses right here rather than in a sub-app onError: Hono wraps
  // a sub-app with its own error handler in a way that makes node-server build a full Response (and a
  // ReadableStream) per request, a cost every read on the hot path would pay.
  const restError = (c: Context, err: unknown) => {
    const rest = err instanceof RestError ? err : err instanceof AppError ? fromAppError(err) : null;
    if (!rest) throw err;
    if (rest.status === 401) c.header('www-authenticate', 'Bearer');
    return c.json(rest.toBody(), rest.status as 400);
  };

  const run = async (who: Identity, schema: string, name: string, p: Plan, prefer: Preferences): Promise<RunResult> => {
    const options: RunOptions = {
      statement: p.statement,
      count: p.count && prefer.count ? { statement: p.count, mode: prefer.count } : undefined,
      expectOne: p.singular,
      maxAffected: prefer.strict ? prefer.maxAffected : undefined,
      rollback: prefer.rollback,
      maxRows,
    };
    try {
      return await runAs(deps.db, who, deps.clock.now(), options);
    } catch (err) {
      // A lost connection is answered by the app-wide 503 database_unavailable, not as a SQL error.
      if (!isPgError(err) || isDatabaseUnavailable(err)) throw err;
      if (err.code === '42P01' || err.code === '42703' || err.code === '42883') catalog.forget(schema, name);
      throw fromPgError(err, who.role);
    }
  };

  const respond = (c: Context, name: string, p: Plan, result: RunResult, prefer: Preferences, neg: Negotiated, offset: number) => {
    const method = c.req.method;
    // With several schemas exposed, PostgREST names the one that answered.
    if (deps.config.restSchemas.length > 1) c.header('content-profile', p.schema);
    const read = method === 'GET' || method === 'HEAD';
    let status = p.status;
    const total = result.total ?? (prefer.count && !read ? result.n : null);
    if (read) {
      const lower = offset;
      const upper = lower + result.n - 1;
      if (total !== null && lower > total && !(lower === 0 && total === 0)) {
        throw restErrors.range(`An offset of ${lower} was requested, but there are only ${total} rows.`);
      }
      if (total !== null && !p.scalarBody && 1 + upper - lower < total) status = 206;
      const range = total !== 0 && result.n > 0 ? `${lower}-${upper}` : '*';
      c.header('content-range', `${range}/${total ?? '*'}`);
    } else {
      c.header('content-range', `*/${total ?? '*'}`);
    }
    if (p.upsert) status = (result.inserted ?? 0) > 0 ? 201 : 200;
    const applied = appliedPreferences(prefer, !read);
    if (applied) c.header('preference-applied', applied);
    if (p.location && result.body) {
      const first = (JSON.parse(result.body) as Record<string, unknown>[])[0];
      if (first) c.header('location', `/${name}?${Object.entries(first).map(([k, v]) => `${encodeURIComponent(k)}=eq.${encodeURIComponent(String(v))}`).join('&')}`);
    }
    if (p.void || !p.representation || result.body === null) return c.body(null, (status === 200 && !read ? 204 : p.void ? 204 : status) as 204);
    let body = result.body;
    let type = 'application/json; charset=utf-8';
    if (neg.format === 'object') {
      type = `application/vnd.pgrst.object+json;${neg.stripNulls ? ' nulls=stripped;' : ''} charset=utf-8`;
      // Exactly one element: `[{...}]` -> `{...}`.
      if (!p.scalarBody) body = body.slice(1, -1);
    } else if (neg.format === 'csv') {
      type = 'text/csv; charset=utf-8';
      body = toCsv(body);
    } else if (neg.stripNulls) {
      type = 'application/vnd.pgrst.array+json; nulls=stripped; charset=utf-8';
    }
    if (method === 'HEAD') return c.body(null, status as 200, { 'content-type': type });
    return c.body(body, status as 200, { 'content-type': type });
  };

  /** Finds the table, reading the catalog again once if a name in the request is new to the cache. */
  const withTable = async <T,>(schema: string, name: string, build: (t: TableInfo) => Promise<T>): Promise<T> => {
    const t = await catalog.table(schema, name);
    if (!t) throw restErrors.table(schema, name);
    try {
      return await build(t);
    } catch (err) {
      // A column added, or a privilege granted, since the entry was cached: look once more.
      if (!(err instanceof RestError) || !['PGRST204', 'PGRST200', '42501'].includes(err.code)) throw err;
      catalog.clear();
      const again = await catalog.table(schema, name);
      if (!again) throw restErrors.table(schema, name);
      return build(again);
    }
  };

  const serveTable = async (c: Context, name: string) => {
    const method = c.req.method;
    const read = method === 'GET' || method === 'HEAD';
    const neg = negotiate(c.req.header('accept'));
    const schema = schemaOf(c, deps, read);
    const prefer = parsePrefer(c.req.header('prefer'));
    if (prefer.strict && prefer.invalid.length) throw restErrors.preferences(prefer.invalid);
    const who = await requestIdentity(c, deps, identities);
    const q = parseQuery(new URL(c.req.url).searchParams);
    const range = read ? parseRange(c) : undefined;
    const body = read || method === 'DELETE' ? null : await readRows(c);
    const singular = neg.format === 'object';
    const write: WriteOptions = { prefer, stripNulls: neg.stripNulls, answer: prefer.return === 'representation' ? 'representation' : prefer.return === 'headers-only' ? 'key' : 'none' };
    const plan = await withTable(schema, name, async (t): Promise<Plan> => {
      const root = await resolveTree(catalog, t, q);
      const where = (p: Params) => conditionsOf(p, root);
      if (read) {
        const built = buildRead(root, `${tableRef(t)} ${rootAlias}`, { stripNulls: neg.stripNulls, count: Boolean(prefer.count), maxRows, ...(range ? { range } : {}) });
        return { ...built, schema, status: 200, representation: true, upsert: false, singular };
      }
      const representation = prefer.return === 'representation';
      const base = { schema, representation, singular, upsert: false };
      if (method === 'POST') {
        const columns = bodyColumns(t, q, body!);
        const target = prefer.resolution ? conflictColumns(t, q) : [];
        const merged = prefer.resolution === 'merge-duplicates' ? columns.filter((col) => !target.includes(col)) : [];
        const denied = checkWritable(t, who.role, columns, merged);
        if (denied) throw denied;
        return { ...base, statement: buildInsert(root, q, columns, body!, write), status: 201, upsert: Boolean(prefer.resolution), location: prefer.return === 'headers-only' && t.primaryKey.length > 0 };
      }
      if (method === 'PUT') {
        if (body!.length !== 1) throw restErrors.invalidBody('PUT takes one object');
        checkPut(t, root.level.conditions, body![0]!, q);
        const columns = bodyColumns(t, q, body!);
        const denied = checkWritable(t, who.role, columns, columns.filter((col) => !t.primaryKey.includes(col)));
        if (denied) throw denied;
        const put = { ...write, prefer: { ...prefer, resolution: 'merge-duplicates' as const } };
        return { ...base, statement: buildInsert(root, { ...q, onConflict: [...t.primaryKey] }, columns, body!, put), status: representation ? 200 : 204 };
      }
      if (method === 'PATCH') {
        if (body!.length !== 1) throw restErrors.invalidBody('PATCH takes one object');
        const columns = bodyColumns(t, q, body!);
        const denied = checkWritable(t, who.role, [], columns);
        if (denied) throw denied;
        if (!columns.length) throw restErrors.invalidBody('Nothing to update: the body names no column');
        return { ...base, statement: buildUpdate(root, columns, JSON.stringify(body![0]), where, write), status: representation ? 200 : 204 };
      }
      if (method === 'DELETE') return { ...base, statement: buildDelete(root, where, write), status: representation ? 200 : 204 };
      throw restErrors.method(method);
    });
    const result = await run(who, schema, name, plan, prefer);
    return respond(c, name, plan, result, prefer, neg, (q.levels.get('')?.offset ?? range?.offset) ?? 0);
  };

  const serveRpc = async (c: Context, name: string) => {
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') throw restErrors.rpcMethod(method);
    const read = method !== 'POST';
    const neg = negotiate(c.req.header('accept'));
    const schema = schemaOf(c, deps, read);
    const prefer = parsePrefer(c.req.header('prefer'));
    if (prefer.strict && prefer.invalid.length) throw restErrors.preferences(prefer.invalid);
    const who = await requestIdentity(c, deps, identities);
    const fns = await catalog.functions(schema, name);
    const params = new URL(c.req.url).searchParams;
    const argNames = new Set(fns.flatMap((f) => f.args.map((a) => a.name)).filter(Boolean));
    const q = parseQuery(params, read ? argNames : new Set());
    let args: Record<string, unknown> = {};
    let rawBody: unknown = {};
    if (read) {
      args = Object.fromEntries(q.rest);
    } else {
      rawBody = await readJson(c);
      if (!prefer.singleObject) {
        if (typeof rawBody !== 'object' || rawBody === null || Array.isArray(rawBody)) throw restErrors.invalidBody('The arguments must be a JSON object');
        args = rawBody as Record<string, unknown>;
      }
    }
    const keys = Object.keys(args);
    const { fn, whole } = chooseFunction(fns, schema, name, { keys, singleObject: prefer.singleObject, jsonBody: !read });
    if (read && fn.volatile) {
      throw new RestError(405, '25006', `cannot execute ${schema}.${name} in a read-only transaction`, null, 'Call a volatile function with POST; GET runs only stable or immutable functions.');
    }
    const table = fn.table ? await catalog.table(schema, fn.table) : undefined;
    const shape = resultTable(fn, table);
    let root: Node | null = null;
    if (shape) root = await resolveTree(catalog, shape, q);
    else if (q.levels.get('')?.conditions.length) throw restErrors.parse(`The function ${schema}.${name} returns no rows to filter`);
    const built = buildCall(fn, root, {
      stripNulls: neg.stripNulls,
      maxRows,
      argsJson: whole ? JSON.stringify(rawBody) : JSON.stringify(args),
      keys,
      whole,
      count: Boolean(prefer.count) && fn.returnsSet && root !== null,
    });
    const plan: Plan = {
      ...built,
      schema,
      status: 200,
      representation: true,
      upsert: false,
      singular: neg.format === 'object' && fn.returnsSet,
      scalarBody: !fn.returnsSet,
      void: fn.returns === 'void',
    };
    const result = await run(who, schema, name, plan, prefer);
    return respond(c, name, plan, result, prefer, neg, q.levels.get('')?.offset ?? 0);
  };

  app.use('/rest/v1/*', async (c, next) => {
    const started = performance.now();
    await next();
    deps.metrics.restRequest(c.req.method, c.res.status, (performance.now() - started) / 1000);
  });
  app.all('/rest/v1/rpc/:fn', (c) => serveRpc(c, c.req.param('fn')).catch((err: unknown) => restError(c, err)));
  app.all('/rest/v1/:table', (c) => serveTable(c, c.req.param('table')).catch((err: unknown) => restError(c, err)));
  const badPath = (c: Context) => restError(c, new RestError(404, 'PGRST125', 'Invalid path specified in request URL'));
  app.all('/rest/v1/*', badPath);
  app.all('/rest/v1', badPath);

  return app;
}

