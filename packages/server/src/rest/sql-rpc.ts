import type { FunctionInfo, TableInfo } from './catalog.ts';
import { RestError } from './rest-errors.ts';
import { Params, quoteIdent, rootAlias, rowsQuery, tableRef, type Node, type Statement } from './sql-builder.ts';

// `/rest/v1/rpc/<fn>`: a function called with named arguments. The arguments travel as one JSON
// object parameter, turned into typed values by json_to_record with the catalog's argument types,
// so arrays, json and composites arrive as Postgres values, never as SQL text. EXECUTE privileges
// and the function's own security decide; the call runs under the caller's role like any read.

const isJson = (type: string) => type === 'json' || type === 'jsonb';

export interface CallRequest {
  /** Argument names given (body keys, or GET query parameters). */
  keys: readonly string[];
  singleObject: boolean;
  /** The request had a JSON body (POST), so a single unnamed json/jsonb parameter may take it. */
  jsonBody: boolean;
}

function noFunction(schema: string, name: string, r: CallRequest): RestError {
  const keys = [...r.keys].sort();
  const prms = keys.length ? `(${keys.join(', ')})` : ' without parameters';
  const det = keys.length ? ` with parameter${keys.length > 1 ? 's' : ''} ${keys.join(', ')}` : ' without parameters';
  return new RestError(
    404,
    'PGRST202',
    `Could not find the function ${schema}.${name}${prms} in the schema cache`,
    `Searched for the function ${schema}.${name}${det}${r.jsonBody ? ' or with a single unnamed json/jsonb parameter' : ''}, but no matches were found in the schema cache.`,
  );
}

/** The overload the arguments name (PostgREST's rule: every key is a parameter, every parameter without a default is given). */
export function chooseFunction(fns: readonly FunctionInfo[], schema: string, name: string, r: CallRequest): { fn: FunctionInfo; whole: boolean } {
  const single = (f: FunctionInfo) => f.args.length === 1 && isJson(f.args[0]!.type) && (r.singleObject || f.args[0]!.name === '');
  if (r.singleObject || r.jsonBody) {
    const whole = fns.filter(single);
    if (whole.length === 1 && (r.singleObject || !fns.some((f) => f !== whole[0] && matches(f, r.keys)))) return { fn: whole[0]!, whole: true };
    if (r.singleObject) throw noFunction(schema, name, r);
  }
  let found = fns.filter((f) => matches(f, r.keys));
  // Several overloads fit: the one taking exactly the given arguments wins, if there is one.
  const exact = found.filter((f) => f.args.length === r.keys.length);
  if (found.length > 1 && exact.length) found = exact;
  if (found.length === 0) throw noFunction(schema, name, r);
  if (found.length > 1) {
    throw new RestError(
      300,
      'PGRST203',
      `Could not choose the best candidate function between: ${found.map((f) => `${schema}.${name}(${f.args.map((a) => `${a.name} => ${a.type}`).join(', ')})`).join(', ')}`,
      null,
      'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
    );
  }
  return { fn: found[0]!, whole: false };
}

function matches(f: FunctionInfo, keys: readonly string[]): boolean {
  const names = new Set(f.args.map((a) => a.name));
  return keys.every((k) => names.has(k)) && f.args.every((a) => a.hasDefault || keys.includes(a.name));
}

/** The result of a function returning rows, as a table the select tree can be resolved against. */
export function resultTable(fn: FunctionInfo, table: TableInfo | undefined): TableInfo | null {
  if (table) return table;
  if (!fn.columns) return null;
  const none = { anon: new Set<string>(), authenticated: new Set<string>(), service_role: new Set<string>() };
  return { schema: fn.schema, name: fn.name, columns: fn.columns, relationships: [], primaryKey: [], insertable: none, updatable: none };
}

export interface CallOptions {
  stripNulls: boolean;
  maxRows?: number;
  /** The arguments object (JSON text) or, for `whole`, the body itself. */
  argsJson: string;
  keys: readonly string[];
  whole: boolean;
  /** The count statement too (rows of a set-returning function, before paging). */
  count: boolean;
}

/**
 * The call. A scalar result (or a set of them) is the value (or an array of values); a row result
 * goes through the select tree (select/filter/order/limit, embeds when it is a table's row type).
 * A function that does not return a set answers one value or object, not an array.
 */
export function buildCall(fn: FunctionInfo, root: Node | null, o: CallOptions): { statement: Statement; count?: Statement } {
  const p = new Params();
  let from: string;
  let call: string;
  const target = tableRef({ schema: fn.schema, name: fn.name });
  if (o.whole) {
    call = `${target}(${p.add(o.argsJson)}::${fn.args[0]!.type})`;
    from = '';
  } else if (o.keys.length) {
    const args = fn.args.filter((a) => o.keys.includes(a.name));
    call = `${target}(${args.map((a) => `${quoteIdent(a.name)} => pgrst_args.${quoteIdent(a.name)}`).join(', ')})`;
    from = `json_to_record(${p.add(o.argsJson)}::json) as pgrst_args(${args.map((a) => `${quoteIdent(a.name)} ${a.type}`).join(', ')}) cross join lateral `;
  } else {
    call = `${target}()`;
    from = '';
  }
  const one = (agg: string) => (fn.returnsSet ? `coalesce(${agg}, '[]')::text` : `coalesce(${agg}->0, 'null')::text`);
  if (!root) {
    if (fn.returns === 'void') return { statement: { text: `select count(*)::int as n, null::text as body, null::int as inserted from ${from}${call} pgrst_scalar`, params: p.list } };
    let rows = `select pgrst_scalar from ${from}${call} pgrst_scalar`;
    if (o.maxRows !== undefined && fn.returnsSet) rows += ` limit ${p.add(o.maxRows)}::bigint`;
    const text = `select count(*)::int as n, ${one('json_agg(pgrst_s.pgrst_scalar)')} as body, null::int as inserted from (${rows}) pgrst_s`;
    return { statement: { text, params: p.list } };
  }
  const source = `${from}${call} ${rootAlias}`;
  const rows = rowsQuery(p, root, source, [], { paging: true, ...(o.maxRows !== undefined && fn.returnsSet ? { maxRows: o.maxRows } : {}) });
  const row = o.stripNulls ? 'json_strip_nulls(to_json(pgrst_source))' : 'pgrst_source';
  const text = `select count(*)::int as n, ${one(`json_agg(${row})`)} as body, null::int as inserted from (${rows}) pgrst_source`;
  if (!o.count) return { statement: { text, params: p.list } };
  const countText = rowsQuery(p, root, source, [], { paging: false });
  return { statement: { text, params: p.list }, count: { text: countText, params: p.list } };
}
