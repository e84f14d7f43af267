import type { DbRole } from '@hallpass/db';
import type { ColumnInfo, TableInfo } from './catalog.ts';
import type { Filter, OrderTerm, ParsedQuery, Preferences } from './query-parser.ts';
import { RestError, restErrors } from './rest-errors.ts';

// Builds the one statement each request runs. Every name comes from the catalog entry and is quoted;
// every value travels in one text[] parameter and is referenced as ($1[i]) cast to the column's
// catalog type (hallpass.rest_run passes that array as $1). The statement returns `n` (rows touched
// or read) and `body` (the rows as one JSON text, made by Postgres, so the server never parses and
// re-serialises them).

export interface Statement {
  text: string;
  /** The values, as text: bound as the single text[] parameter $1. */
  params: string[];
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const tableRef = (t: TableInfo) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
// The target table's alias in every statement, so filters never collide with body columns.
const alias = 'pgrst_t';

class Params {
  readonly list: string[] = [];
  /** A reference to the value; lists travel as JSON text. */
  add(value: string | number | readonly string[]): string {
    this.list.push(typeof value === 'string' ? value : Array.isArray(value) ? JSON.stringify(value) : String(value));
    return `($1[${this.list.length}])`;
  }
}

/** The catalog's column, or PGRST204. */
export function columnOf(t: TableInfo, name: string): ColumnInfo {
  const c = t.columns.get(name);
  if (!c) throw restErrors.column(t.name, name);
  return c;
}

const comparisons = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

function filterSql(t: TableInfo, f: Filter, params: Params): string {
  const c = columnOf(t, f.column);
  const ref = `${alias}.${quoteIdent(c.name)}`;
  let expr: string;
  switch (f.op) {
    case 'like':
    case 'ilike':
      expr = `${ref}::text ${f.op} ${params.add(f.value)}`;
      break;
    case 'is':
      // A keyword from a closed list (parser-checked), not a value.
      expr = `${ref} is ${f.value as 'null' | 'true' | 'false' | 'unknown'}`;
      break;
    case 'in':
      expr = `${ref} = any(array(select json_array_elements_text(${params.add(f.value)}::json))::${c.type}[])`;
      break;
    default:
      expr = `${ref} ${comparisons[f.op]} ${params.add(f.value)}::${c.type}`;
  }
  return f.negate ? `not (${expr})` : expr;
}

function whereSql(t: TableInfo, filters: readonly Filter[], params: Params): string {
  return filters.length ? ` where ${filters.map((f) => filterSql(t, f, params)).join(' and ')}` : '';
}

function orderSql(t: TableInfo, order: readonly OrderTerm[]): string {
  if (!order.length) return '';
  const terms = order.map((o) => {
    const c = columnOf(t, o.column);
    return `${alias}.${quoteIdent(c.name)} ${o.descending ? 'desc' : 'asc'}${o.nulls ? ` nulls ${o.nulls}` : ''}`;
  });
  return ` order by ${terms.join(', ')}`;
}

function selectList(t: TableInfo, select: ParsedQuery['select']): string {
  if (select === '*') return `${alias}.*`;
  return select
    .map((s) => {
      const c = columnOf(t, s.column);
      return `${alias}.${quoteIdent(c.name)}${s.alias ? ` as ${quoteIdent(s.alias)}` : ''}`;
    })
    .join(', ');
}

/** Wraps a row source (a subquery or a CTE name) into `n` and `body`. */
function wrap(source: string, representation: boolean, stripNulls: boolean): string {
  const row = stripNulls ? 'json_strip_nulls(to_json(pgrst_source))' : 'pgrst_source';
  const body = representation ? `coalesce(json_agg(${row}), '[]')::text` : 'null::text';
  return `select count(*)::int as n, ${body} as body from ${source}`;
}

export interface ReadOptions {
  stripNulls: boolean;
}

export function buildSelect(t: TableInfo, q: ParsedQuery, o: ReadOptions): Statement {
  const params = new Params();
  let text = `select ${selectList(t, q.select)} from ${tableRef(t)} ${alias}${whereSql(t, q.filters, params)}${orderSql(t, q.order)}`;
  if (q.limit !== undefined) text += ` limit ${params.add(q.limit)}::bigint`;
  if (q.offset !== undefined) text += ` offset ${params.add(q.offset)}::bigint`;
  return { text: wrap(`(${text}) pgrst_source`, true, o.stripNulls), params: params.list };
}

/**
 * `count=exact`: the rows the filters match (RLS applies here too). Its parameters are the same
 * prefix of the select's (filters come first in both), so it runs with the select's array.
 */
export function buildCount(t: TableInfo, q: ParsedQuery): Statement {
  const params = new Params();
  return { text: `select count(*)::int as total from ${tableRef(t)} ${alias}${whereSql(t, q.filters, params)}`, params: params.list };
}

function returningSql(t: TableInfo, q: ParsedQuery, representation: boolean): string {
  return ` returning ${representation ? selectList(t, q.select) : '1'}`;
}

export interface WriteOptions {
  prefer: Preferences;
  stripNulls: boolean;
  role: DbRole;
}

function deny(t: TableInfo, action: 'insert' | 'update', column: string, role: DbRole): RestError {
  const allowed = [...(action === 'insert' ? t.insertable : t.updatable)[role]];
  return new RestError(
    role === 'anon' ? 401 : 403,
    '42501',
    `permission denied to ${action} column "${column}" of table "${t.name}"`,
    null,
    allowed.length ? `This role may ${action} only: ${allowed.join(', ')}.` : `This role may not ${action} rows of "${t.name}".`,
  );
}

/**
 * Column privileges decide what a role may write; Postgres enforces them. Checking first against
 * the catalog turns the bare "permission denied for table" into an error that names the column.
 */
export function checkWritable(t: TableInfo, role: DbRole, insert: readonly string[], update: readonly string[]): RestError | null {
  for (const c of insert) if (!t.insertable[role].has(c)) return deny(t, 'insert', c, role);
  for (const c of update) if (!t.updatable[role].has(c)) return deny(t, 'update', c, role);
  return null;
}

/** The columns a write names: `columns=` when given, else every key of the body rows. */
export function bodyColumns(t: TableInfo, q: ParsedQuery, rows: readonly Record<string, unknown>[]): string[] {
  const names = q.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return names.map((n) => columnOf(t, n).name);
}

/** The conflict target of an upsert: `on_conflict` columns, else the primary key. */
export function conflictColumns(t: TableInfo, q: ParsedQuery): string[] {
  const cols = q.onConflict ?? [...t.primaryKey];
  if (!cols.length) throw restErrors.parse(`Table "${t.name}" has no primary key; give on_conflict`);
  return cols.map((n) => columnOf(t, n).name);
}

export function buildInsert(t: TableInfo, q: ParsedQuery, columns: readonly string[], rowsJson: string, o: WriteOptions): Statement {
  const params = new Params();
  const representation = o.prefer.return === 'representation';
  let insert: string;
  if (columns.length === 0) {
    insert = `insert into ${tableRef(t)} as ${alias} default values`;
  } else {
    const list = columns.map(quoteIdent).join(', ');
    insert = `insert into ${tableRef(t)} as ${alias} (${list}) select ${list} from json_populate_recordset(null::${tableRef(t)}, ${params.add(rowsJson)}::json)`;
  }
  if (o.prefer.resolution) {
    const target = conflictColumns(t, q);
    // The conflict columns already hold these values; setting them again would only need an
    // UPDATE privilege on them (clients have none on, e.g., profiles.email) for no change.
    const set = columns.filter((c) => !target.includes(c));
    const action =
      o.prefer.resolution === 'ignore-duplicates' || set.length === 0
        ? 'do nothing'
        : `do update set ${set.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`;
    insert += ` on conflict (${target.map(quoteIdent).join(', ')}) ${action}`;
  }
  const text = `with pgrst_source as (${insert}${returningSql(t, q, representation)}) ${wrap('pgrst_source', representation, o.stripNulls)}`;
  return { text, params: params.list };
}

export function buildUpdate(t: TableInfo, q: ParsedQuery, columns: readonly string[], rowJson: string, o: WriteOptions): Statement {
  const params = new Params();
  const representation = o.prefer.return === 'representation';
  const list = columns.map(quoteIdent).join(', ');
  const set = `(${list}) = (select ${list} from json_populate_record(null::${tableRef(t)}, ${params.add(rowJson)}::json))`;
  const update = `update ${tableRef(t)} as ${alias} set ${set}${whereSql(t, q.filters, params)}`;
  return { text: `with pgrst_source as (${update}${returningSql(t, q, representation)}) ${wrap('pgrst_source', representation, o.stripNulls)}`, params: params.list };
}

export function buildDelete(t: TableInfo, q: ParsedQuery, o: WriteOptions): Statement {
  const params = new Params();
  const representation = o.prefer.return === 'representation';
  const del = `delete from ${tableRef(t)} as ${alias}${whereSql(t, q.filters, params)}`;
  return { text: `with pgrst_source as (${del}${returningSql(t, q, representation)}) ${wrap('pgrst_source', representation, o.stripNulls)}`, params: params.list };
}
