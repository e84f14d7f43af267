import type { Catalog, ColumnInfo, Relationship, TableInfo } from './catalog.ts';
import type { Condition, EmbedItem, Field, Leaf, Level, OrderTerm, ParsedQuery, SelectItem } from './query-parser.ts';
import { RestError, restErrors } from './rest-errors.ts';

// Builds the one statement each request runs. Every name comes from a catalog entry and is quoted;
// every value travels in one text[] parameter and is referenced as ($1[i]) cast to the column's
// catalog type (hallpass.rest_run passes that array as $1). A read is one SELECT: each embedded
// resource is a LATERAL subquery over its own table, joined on the foreign key, so it runs in the
// same statement, under the same role and the same RLS policies as the top level. The statement
// returns `n` (rows) and `body` (the rows as one JSON text, made by Postgres).

export interface Statement {
  text: string;
  /** The values, as text: bound as the single text[] parameter $1. */
  params: string[];
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const tableRef = (t: Pick<TableInfo, 'schema' | 'name'>) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
/** The top-level rows' alias in every statement, so filters never collide with body columns. */
export const rootAlias = 'pgrst_t';

export class Params {
  readonly list: string[] = [];
  /** A reference to the value; lists travel as JSON text. */
  add(value: string | number | readonly string[]): string {
    this.list.push(typeof value === 'string' ? value : Array.isArray(value) ? JSON.stringify(value) : String(value));
    return `($1[${this.list.length}])`;
  }
}

/** The catalog's column, or PGRST204. */
export function columnOf(t: Pick<TableInfo, 'name' | 'columns'>, name: string): ColumnInfo {
  const c = t.columns.get(name);
  if (!c) throw restErrors.column(t.name, name);
  return c;
}

/** One level of a resolved select tree: a table (or an rpc result) and what the request asks of it. */
export interface Node {
  table: TableInfo;
  alias: string;
  path: string;
  items: SelectItem[];
  level: Level;
  embeds: Embed[];
}

export interface Embed {
  item: EmbedItem;
  rel: Relationship;
  node: Node;
  /** The key in the answer (alias, else the name). */
  key: string;
  sql: string;
  toOne: boolean;
}

const emptyLevel = (): Level => ({ conditions: [], order: [] });

function relationshipError(t: TableInfo, e: EmbedItem, found: Relationship[]): RestError {
  if (found.length === 0) {
    return new RestError(
      400,
      'PGRST200',
      `Could not find a relationship between '${t.name}' and '${e.name}' in the schema cache`,
      `Searched for a foreign key relationship between '${t.name}' and '${e.name}'${e.hint ? ` using the hint '${e.hint}'` : ''} in the schema '${t.schema}', but no matches were found.`,
    );
  }
  const cols = (tbl: string, c: readonly string[]) => `${tbl}(${c.join(', ')})`;
  return new RestError(
    300,
    'PGRST201',
    `Could not embed because more than one relationship was found for '${t.name}' and '${e.name}'`,
    found.map((r) => ({
      cardinality: r.cardinality,
      embedding: `${t.name} with ${r.target}`,
      relationship: r.junction
        ? `${r.junction.name} using ${r.junction.constraints[0]}(${r.junction.source.map((p) => p[0]).join(', ')}) and ${r.junction.constraints[1]}(${r.junction.target.map((p) => p[0]).join(', ')})`
        : `${r.constraint} using ${cols(t.name, r.columns.map((p) => p[0]))} and ${cols(r.target, r.columns.map((p) => p[1]))}`,
    })),
    `Try changing '${e.name}' to one of the following: ${found.map((r) => `'${e.name}!${r.constraint}'`).join(', ')}. Find the desired relationship in the 'details' key.`,
  );
}

/** The relationship an embed names, by target table (or foreign-key column / name) and `!hint`. */
export function findRelationship(t: TableInfo, e: EmbedItem): Relationship {
  let found = t.relationships.filter((r) => r.target === e.name);
  if (found.length === 0) {
    found = t.relationships.filter((r) => !r.junction && (r.constraint === e.name || (r.columns.length === 1 && r.columns[0]![0] === e.name && r.cardinality !== 'one-to-many')));
  }
  if (e.hint !== undefined) {
    const h = e.hint;
    found = found.filter((r) => r.constraint === h || r.junction?.constraints.includes(h) || r.columns.some(([a, b]) => a === h || b === h));
  }
  if (found.length !== 1) throw relationshipError(t, e, found);
  return found[0]!;
}

/**
 * Resolves the select tree against the catalog: every embed to one relationship and its table.
 * Levels named in filters/order but not embedded answer PGRST108, as PostgREST does.
 */
export async function resolveTree(catalog: Catalog, t: TableInfo, q: ParsedQuery, rootSource = rootAlias): Promise<Node> {
  let counter = 0;
  const paths = new Set<string>();
  const build = async (table: TableInfo, given: SelectItem[], path: string, alias: string): Promise<Node> => {
    paths.add(path);
    // `comments(count)`: a bare `count` on a table without such a column is count(), as in PostgREST.
    const items = given.map((i): SelectItem =>
      i.kind === 'column' && i.field.name === 'count' && !i.field.json.length && !i.cast && !i.aggregate && !table.columns.has('count')
        ? { kind: 'count', ...(i.alias ? { alias: i.alias } : {}) }
        : i,
    );
    const node: Node = { table, alias, path, items, level: q.levels.get(path) ?? emptyLevel(), embeds: [] };
    for (const item of items) {
      if (item.kind !== 'embed') continue;
      const rel = findRelationship(table, item);
      const target = await catalog.table(table.schema, rel.target);
      if (!target) throw relationshipError(table, item, []);
      const key = item.alias ?? item.name;
      const n = ++counter;
      const child = await build(target, item.select, path ? `${path}.${key}` : key, `pgrst_${n}`);
      const toOne = rel.cardinality === 'many-to-one' || rel.cardinality === 'one-to-one';
      node.embeds.push({ item, rel, node: child, key, sql: `pgrst_e${n}`, toOne });
    }
    return node;
  };
  const root = await build(t, q.select, '', rootSource);
  for (const path of q.levels.keys()) {
    if (!paths.has(path)) {
      throw new RestError(400, 'PGRST108', `'${path}' is not an embedded resource in this request`, null, `Verify that '${path}' is included in the 'select' query parameter.`);
    }
  }
  return root;
}

/** A column or JSON path of `node` as SQL; `compare` gives `->` paths as jsonb (json has no `=`). */
function fieldSql(p: Params, node: Node, f: Field, compare: boolean): { sql: string; type: string } {
  const c = columnOf(node.table, f.name);
  let sql = `${node.alias}.${quoteIdent(c.name)}`;
  if (!f.json.length) return { sql, type: c.type };
  if (!/^(json|jsonb)$/.test(c.type)) throw restErrors.parse(`"${c.name}" is not a json or jsonb column; it has no JSON path`);
  for (const step of f.json) sql = `(${sql}${step.arrow}${/^-?\d{1,9}$/.test(step.key) ? `${p.add(step.key)}::int` : p.add(step.key)})`;
  const last = f.json[f.json.length - 1]!;
  if (last.arrow === '->>') return { sql, type: 'text' };
  return compare ? { sql: `${sql}::jsonb`, type: 'jsonb' } : { sql, type: c.type };
}

/** The key a select item gets in the answer. */
function outputName(item: SelectItem & { kind: 'column' }): string {
  if (item.alias) return item.alias;
  if (item.aggregate) return item.aggregate;
  return item.field.json.length ? item.field.json[item.field.json.length - 1]!.key : item.field.name;
}

/** The keys a node puts in each row (for spreads and related order). */
function outputNames(node: Node): string[] {
  return node.items.flatMap((item): string[] => {
    if (item.kind === 'star') return [...node.table.columns.keys()];
    if (item.kind === 'count') return [item.alias ?? 'count'];
    if (item.kind === 'column') return [outputName(item)];
    const e = node.embeds.find((x) => x.item === item)!;
    if (item.spread) return outputNames(e.node);
    return item.select.length ? [e.key] : [];
  });
}

function selectList(p: Params, node: Node): { list: string[]; groupBy: string[] } {
  const list: string[] = [];
  const plain: string[] = [];
  let aggregated = false;
  for (const item of node.items) {
    if (item.kind === 'star') {
      list.push(`${node.alias}.*`);
      for (const c of node.table.columns.keys()) plain.push(`${node.alias}.${quoteIdent(c)}`);
    } else if (item.kind === 'count') {
      aggregated = true;
      list.push(`count(*) as ${quoteIdent(item.alias ?? 'count')}`);
    } else if (item.kind === 'column') {
      let { sql } = fieldSql(p, node, item.field, false);
      if (item.cast) sql = `(${sql})::${item.cast}`;
      if (item.aggregate) {
        aggregated = true;
        sql = `${item.aggregate}(${sql})`;
        if (item.aggregateCast) sql = `(${sql})::${item.aggregateCast}`;
      } else plain.push(sql);
      list.push(`${sql} as ${quoteIdent(outputName(item))}`);
    } else {
      const e = node.embeds.find((x) => x.item === item)!;
      if (item.spread) {
        for (const name of outputNames(e.node)) list.push(`${e.sql}.${quoteIdent(name)} as ${quoteIdent(name)}`);
      } else if (item.select.length) {
        list.push(`${e.toOne ? `${e.sql}.pgrst_v` : `coalesce(${e.sql}.pgrst_v, '[]'::json)`} as ${quoteIdent(e.key)}`);
      }
    }
  }
  if (aggregated && node.embeds.some((e) => e.item.select.length)) {
    throw restErrors.parse('Aggregates cannot be combined with embedded resources on the same level', 'Move the aggregate into the embedded resource, e.g. select=title,comments(count)');
  }
  return { list, groupBy: aggregated ? plain : [] };
}

const comparisons: Record<string, string> = {
  eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=',
  cs: '@>', cd: '<@', ov: '&&', sl: '<<', sr: '>>', nxl: '&>', nxr: '&<', adj: '-|-',
};
const textSearch: Record<string, string> = { fts: 'to_tsquery', plfts: 'plainto_tsquery', phfts: 'phraseto_tsquery', wfts: 'websearch_to_tsquery' };

function leafSql(p: Params, node: Node, f: Leaf): string {
  // `posts=not.is.null`: a condition on the embed itself (with !inner semantics), not a column.
  const embed = !f.field.json.length && !node.table.columns.has(f.field.name) ? node.embeds.find((e) => e.key === f.field.name) : undefined;
  if (embed) {
    if (f.op !== 'is' || (f.value !== 'null' && f.value !== 'not_null')) {
      throw new RestError(400, 'PGRST120', `Bad operator on the '${embed.key}' embedded resource`, 'Only is null or not is null filters are allowed on embedded resources');
    }
    const isNull = (f.value === 'null') !== f.negate;
    return `${embed.sql}.pgrst_v is ${isNull ? '' : 'not '}null`;
  }
  const { sql: lhs, type } = fieldSql(p, node, f.field, true);
  const v = typeof f.value === 'string' ? f.value : '';
  let expr: string;
  switch (f.op) {
    case 'like':
    case 'ilike':
      expr = `${lhs}::text ${f.op} ${p.add(v)}`;
      break;
    case 'match':
    case 'imatch':
      expr = `${lhs}::text ${f.op === 'match' ? '~' : '~*'} ${p.add(v)}`;
      break;
    case 'is':
      // A keyword from a closed list (parser-checked), not a value.
      expr = v === 'not_null' ? `${lhs} is not null` : `${lhs} is ${v}`;
      break;
    case 'isdistinct':
      expr = `${lhs} is distinct from ${p.add(v)}::${type}`;
      break;
    case 'in':
      expr = `${lhs} = any(array(select json_array_elements_text(${p.add(f.value)}::json))::${type}[])`;
      break;
    case 'fts':
    case 'plfts':
    case 'phfts':
    case 'wfts': {
      const lang = f.language ? `${p.add(f.language)}::regconfig, ` : '';
      const doc = type === 'tsvector' ? lhs : `to_tsvector(${lang}${lhs}::text)`;
      expr = `${doc} @@ ${textSearch[f.op]}(${lang}${p.add(v)})`;
      break;
    }
    default: {
      // `ov.(a,b)` on an array column: PostgREST's list form of `{a,b}`.
      const value = f.op === 'ov' && type.endsWith('[]') && /^\(.*\)$/s.test(v) ? `{${v.slice(1, -1)}}` : v;
      expr = `${lhs} ${comparisons[f.op]} ${p.add(value)}::${type}`;
    }
  }
  return f.negate ? `not (${expr})` : expr;
}

function conditionSql(p: Params, node: Node, c: Condition): string {
  if (c.kind === 'leaf') return leafSql(p, node, c);
  const inner = `(${c.items.map((i) => conditionSql(p, node, i)).join(` ${c.kind} `)})`;
  return c.negate ? `not ${inner}` : inner;
}

/** The top level's conditions, for the WHERE of an update or delete. */
export function conditionsOf(p: Params, root: Node): string[] {
  return root.level.conditions.map((c) => conditionSql(p, root, c));
}

function orderSql(p: Params, node: Node, order: readonly OrderTerm[]): string {
  if (!order.length) return '';
  const terms = order.map((o) => {
    let expr: string;
    if (o.relation !== undefined) {
      const e = node.embeds.find((x) => x.key === o.relation);
      if (!e) throw new RestError(400, 'PGRST108', `'${o.relation}' is not an embedded resource in this request`, null, `Verify that '${o.relation}' is included in the 'select' query parameter.`);
      if (!e.toOne) {
        throw new RestError(400, 'PGRST118', `A related order on '${e.key}' is not possible`, `'${node.table.name}' and '${e.key}' do not form a many-to-one or one-to-one relationship`);
      }
      if (o.field.json.length || !outputNames(e.node).includes(o.field.name)) throw restErrors.column(e.node.table.name, o.field.name);
      expr = `${e.sql}.${quoteIdent(o.field.name)}`;
    } else {
      expr = fieldSql(p, node, o.field, false).sql;
    }
    return `${expr} ${o.descending ? 'desc' : 'asc'}${o.nulls ? ` nulls ${o.nulls}` : ''}`;
  });
  return ` order by ${terms.join(', ')}`;
}

function lateralSql(p: Params, parent: Node, e: Embed): string {
  const child = e.node;
  const where: string[] = [];
  let source = `${tableRef(child.table)} ${child.alias}`;
  if (e.rel.junction) {
    const j = `${child.alias}_j`;
    source += ` join ${tableRef({ schema: child.table.schema, name: e.rel.junction.name })} ${j} on ${e.rel.junction.target
      .map(([jc, tc]) => `${j}.${quoteIdent(jc)} = ${child.alias}.${quoteIdent(tc)}`)
      .join(' and ')}`;
    for (const [jc, pc] of e.rel.junction.source) where.push(`${j}.${quoteIdent(jc)} = ${parent.alias}.${quoteIdent(pc)}`);
  } else {
    for (const [pc, cc] of e.rel.columns) where.push(`${child.alias}.${quoteIdent(cc)} = ${parent.alias}.${quoteIdent(pc)}`);
  }
  const rows = rowsQuery(p, child, source, where, { paging: true });
  if (e.toOne) {
    const join = e.item.join === 'inner' ? 'inner join' : 'left join';
    return ` ${join} lateral (select to_json(pgrst_r) as pgrst_v, pgrst_r.* from (${rows}) pgrst_r) ${e.sql} on true`;
  }
  // A to-many spread: each column becomes an array of its values.
  const spread = e.item.spread ? outputNames(child).map((n) => `, json_agg(pgrst_r.${quoteIdent(n)}) as ${quoteIdent(n)}`).join('') : '';
  return ` left join lateral (select json_agg(pgrst_r) as pgrst_v${spread} from (${rows}) pgrst_r) ${e.sql} on true`;
}

export interface RowsOptions {
  /** Apply the level's order/limit/offset (not for counting). */
  paging: boolean;
  /** The row cap (max_rows): a limit that no request goes past. */
  maxRows?: number;
  /** Limit and offset from the Range header, when the query has none. */
  range?: { offset: number; limit?: number };
}

/** The rows of one level: its select list, its embeds as laterals, its conditions and paging. */
export function rowsQuery(p: Params, node: Node, source: string, joinWhere: readonly string[], o: RowsOptions): string {
  const { list, groupBy } = selectList(p, node);
  const laterals = node.embeds.map((e) => lateralSql(p, node, e)).join('');
  const where = [...joinWhere, ...node.level.conditions.map((c) => conditionSql(p, node, c))];
  // !inner on a to-many embed: keep only parents with at least one matching child.
  for (const e of node.embeds) if (!e.toOne && e.item.join === 'inner') where.push(`${e.sql}.pgrst_v is not null`);
  let text = `select ${list.join(', ')} from ${source}${laterals}${where.length ? ` where ${where.join(' and ')}` : ''}`;
  if (groupBy.length) text += ` group by ${groupBy.join(', ')}`;
  if (!o.paging) return text;
  text += orderSql(p, node, node.level.order);
  let limit = node.level.limit ?? o.range?.limit;
  const offset = node.level.offset ?? (node.level.limit === undefined ? o.range?.offset : undefined);
  if (o.maxRows !== undefined) limit = Math.min(limit ?? o.maxRows, o.maxRows);
  if (limit !== undefined) text += ` limit ${p.add(limit)}::bigint`;
  if (offset) text += ` offset ${p.add(offset)}::bigint`;
  return text;
}

/** Wraps a row source into `n` and `body` (the rows as one JSON array text). */
export function wrap(rows: string, stripNulls: boolean): string {
  const row = stripNulls ? 'json_strip_nulls(to_json(pgrst_source))' : 'pgrst_source';
  return `select count(*)::int as n, coalesce(json_agg(${row}), '[]')::text as body, null::int as inserted from (${rows}) pgrst_source`;
}

export interface ReadOptions extends Omit<RowsOptions, 'paging'> {
  stripNulls: boolean;
  /** Also build the count statement (the rows the filters match, before paging). */
  count: boolean;
}

/** A read of `root` from `source`: the statement, and its count statement (same parameter array). */
export function buildRead(root: Node, source: string, o: ReadOptions): { statement: Statement; count?: Statement } {
  const p = new Params();
  const text = wrap(rowsQuery(p, root, source, [], { paging: true, ...(o.maxRows !== undefined ? { maxRows: o.maxRows } : {}), ...(o.range ? { range: o.range } : {}) }), o.stripNulls);
  if (!o.count) return { statement: { text, params: p.list } };
  // The count shares the parameter array: its references come after the read's.
  const countText = rowsQuery(p, root, source, [], { paging: false });
  return { statement: { text, params: p.list }, count: { text: countText, params: p.list } };
}
