import type { DbRole } from '@hallpass/db';
import type { TableInfo } from './catalog.ts';
import type { Condition, ParsedQuery, Preferences } from './query-parser.ts';
import { RestError, restErrors } from './rest-errors.ts';
import { columnOf, Params, quoteIdent, rootAlias, rowsQuery, tableRef, type Node, type Statement } from './sql-builder.ts';

// Insert, update, delete, upsert and PUT as one statement each: the write is a CTE returning whole
// rows (and, for upserts, whether each row was inserted), and the answer is the same select tree a
// read builds, embeds included, over those rows. The statement returns `n`, `body` and `inserted`.

export interface WriteOptions {
  prefer: Preferences;
  stripNulls: boolean;
  /** What the body must carry: the select tree (return=representation), the key (headers-only), or nothing. */
  answer: 'representation' | 'key' | 'none';
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

/** The answer over the written rows: the select tree without the request's own filters (they chose the rows). */
function finish(p: Params, root: Node, write: string, o: WriteOptions, upsert: boolean): string {
  const cte = `with pgrst_w as (${write} returning ${rootAlias} as pgrst_row, ${upsert ? `(${rootAlias}.xmax = 0)` : 'true'} as pgrst_ins)`;
  const source = `(select (pgrst_w.pgrst_row).* from pgrst_w) ${rootAlias}`;
  let body = 'null::text';
  if (o.answer !== 'none') {
    const node: Node =
      o.answer === 'key'
        ? { ...root, items: root.table.primaryKey.map((c) => ({ kind: 'column', field: { name: c, json: [] } })), embeds: [], level: { conditions: [], order: [] } }
        : { ...root, level: { ...root.level, conditions: [], limit: undefined, offset: undefined } as typeof root.level };
    const rows = rowsQuery(p, node, source, [], { paging: true });
    const row = o.stripNulls ? 'json_strip_nulls(to_json(pgrst_r))' : 'pgrst_r';
    body = `(select coalesce(json_agg(${row}), '[]')::text from (${rows}) pgrst_r)`;
  }
  return `${cte} select (select count(*)::int from pgrst_w) as n, ${body} as body, (select count(*)::int from pgrst_w where pgrst_ins) as inserted`;
}

export function buildInsert(root: Node, q: ParsedQuery, columns: readonly string[], rows: readonly Record<string, unknown>[], o: WriteOptions): Statement {
  const p = new Params();
  const t = root.table;
  let insert: string;
  const list = columns.map(quoteIdent).join(', ');
  if (columns.length === 0) {
    insert = `insert into ${tableRef(t)} as ${rootAlias} default values`;
  } else if (o.prefer.missingDefault) {
    // missing=default: a key absent from a row takes the column's default, as if it were not named.
    const values = rows.map((r) => {
      const ref = p.add(JSON.stringify(r));
      return `(${columns.map((c) => (c in r ? `(json_populate_record(null::${tableRef(t)}, ${ref}::json)).${quoteIdent(c)}` : 'default')).join(', ')})`;
    });
    insert = `insert into ${tableRef(t)} as ${rootAlias} (${list}) values ${values.join(', ')}`;
  } else {
    insert = `insert into ${tableRef(t)} as ${rootAlias} (${list}) select ${list} from json_populate_recordset(null::${tableRef(t)}, ${p.add(JSON.stringify(rows))}::json)`;
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
  return { text: finish(p, root, insert, o, Boolean(o.prefer.resolution)), params: p.list };
}

export function buildUpdate(root: Node, columns: readonly string[], rowJson: string, conditions: (p: Params) => string[], o: WriteOptions): Statement {
  const p = new Params();
  const t = root.table;
  const list = columns.map(quoteIdent).join(', ');
  const set = `(${list}) = (select ${list} from json_populate_record(null::${tableRef(t)}, ${p.add(rowJson)}::json))`;
  const where = conditions(p);
  const update = `update ${tableRef(t)} as ${rootAlias} set ${set}${where.length ? ` where ${where.join(' and ')}` : ''}`;
  return { text: finish(p, root, update, o, false), params: p.list };
}

export function buildDelete(root: Node, conditions: (p: Params) => string[], o: WriteOptions): Statement {
  const p = new Params();
  const where = conditions(p);
  const del = `delete from ${tableRef(root.table)} as ${rootAlias}${where.length ? ` where ${where.join(' and ')}` : ''}`;
  return { text: finish(p, root, del, o, false), params: p.list };
}

/**
 * PUT: a single-row upsert on the primary key. The filters must be `eq` on every primary-key column
 * and nothing else (PGRST105), and the body must carry the same key values (PGRST115).
 */
export function checkPut(t: TableInfo, conditions: readonly Condition[], row: Record<string, unknown>, q: ParsedQuery): void {
  const pk = t.primaryKey;
  const eqs = new Map<string, string>();
  for (const c of conditions) if (c.kind === 'leaf' && c.op === 'eq' && !c.negate && !c.field.json.length) eqs.set(c.field.name, String(c.value));
  if (!pk.length || conditions.length !== pk.length || eqs.size !== pk.length || !pk.every((k) => eqs.has(k))) {
    throw new RestError(405, 'PGRST105', "Filters must include all and only primary key columns with 'eq' operators");
  }
  const levels = [...q.levels.values()];
  if (levels.some((l) => l.limit !== undefined || l.offset !== undefined)) {
    throw new RestError(400, 'PGRST114', 'limit/offset querystring parameters are not allowed for PUT');
  }
  if (!pk.every((k) => k in row && String(row[k]) === eqs.get(k))) {
    throw new RestError(400, 'PGRST115', 'Payload values do not match URL in primary key column(s)');
  }
}
