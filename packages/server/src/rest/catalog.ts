import type { DbRole, Queryable } from '@hallpass/db';

export interface ColumnInfo {
  name: string;
  /** The column's type as `regtype` prints it (quoted where needed): used in parameter casts. */
  type: string;
}

/** A foreign-key path from one table to another, as PostgREST's schema cache knows it. */
export interface Relationship {
  /** The foreign key's name (the junction's table name for many-to-many): what `!hint` may name. */
  constraint: string;
  cardinality: 'many-to-one' | 'one-to-many' | 'one-to-one' | 'many-to-many';
  target: string;
  /** Column pairs (this table's column, the target's column); for many-to-many, this table's side. */
  columns: readonly (readonly [string, string])[];
  junction?: {
    name: string;
    /** (junction column, this table's column) and (junction column, target column). */
    source: readonly (readonly [string, string])[];
    target: readonly (readonly [string, string])[];
    constraints: readonly [string, string];
  };
}

export interface TableInfo {
  schema: string;
  name: string;
  columns: ReadonlyMap<string, ColumnInfo>;
  /** Foreign-key relationships to tables of the same schema. */
  relationships: readonly Relationship[];
  primaryKey: readonly string[];
  /** Per role, the columns it may insert / update (column or table privileges), for clear errors. */
  insertable: Readonly<Record<DbRole, ReadonlySet<string>>>;
  updatable: Readonly<Record<DbRole, ReadonlySet<string>>>;
}

export interface CatalogOptions {
  /** How long a table's entry is trusted before it is read again. @default 30_000 */
  ttlMs?: number;
  now?: () => number;
}

export interface Catalog {
  /** The table or view `schema.name`, or undefined when it does not exist. */
  table(schema: string, name: string): Promise<TableInfo | undefined>;
  /** The functions `schema.name` (every overload), or an empty list. */
  functions(schema: string, name: string): Promise<readonly FunctionInfo[]>;
  /** Forgets a table (a column was missing, or the table vanished): the next lookup reads again. */
  forget(schema: string, name: string): void;
  /** Forgets everything: `NOTIFY pgrst, 'reload schema'`, or migrations ran. */
  clear(): void;
}

export interface FunctionArg {
  name: string;
  type: string;
  hasDefault: boolean;
}

export interface FunctionInfo {
  schema: string;
  name: string;
  args: readonly FunctionArg[];
  /** `regtype` of the result; 'void' for none. */
  returns: string;
  returnsSet: boolean;
  /** The result's columns when it is a row type (a table's, a composite, or OUT/TABLE columns). */
  columns: ReadonlyMap<string, ColumnInfo> | null;
  /** The table whose rows it returns (`returns setof posts`): embedding works from its result. */
  table: string | null;
  volatile: boolean;
}

interface ColumnRow {
  name: string;
  type: string;
  pk: boolean;
  privs: boolean[];
}

const roles: readonly DbRole[] = ['anon', 'authenticated', 'service_role'];

// One statement per table: its columns, primary key, and every role's insert/update privilege.
const tableQuery = `
select a.attname as name, a.atttypid::regtype::text as type,
       coalesce(a.attnum = any(pk.conkey), false) as pk,
       array[has_column_privilege('anon', c.oid, a.attnum, 'INSERT'),
             has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT'),
             has_column_privilege('service_role', c.oid, a.attnum, 'INSERT'),
             has_column_privilege('anon', c.oid, a.attnum, 'UPDATE'),
             has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE'),
             has_column_privilege('service_role', c.oid, a.attnum, 'UPDATE')] as privs
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  left join pg_catalog.pg_constraint pk on pk.conrelid = c.oid and pk.contype = 'p'
 where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'v', 'm', 'p', 'f')
 order by a.attnum`;

/**
 * The schema cache of the data API: what tables and columns exist, read from pg_catalog and kept per
 * table. Identifiers from requests are only ever used after they were found here, so every name in a
 * statement is one the catalog knows. A miss reads the catalog again (a table created after start is
 * found at once); a hit is trusted for `ttlMs`, and a statement that fails on a vanished table or
 * column makes the caller `forget` the entry.
 */
export function createCatalog(db: Queryable, options: CatalogOptions = {}): Catalog {
  const ttl = options.ttlMs ?? 30_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { info: TableInfo | undefined; at: number }>();
  const loading = new Map<string, Promise<TableInfo | undefined>>();
  const functionCache = new Map<string, { info: readonly FunctionInfo[]; at: number }>();

  const load = async (schema: string, name: string): Promise<TableInfo | undefined> => {
    const [{ rows }, fks, views] = await Promise.all([
      db.query<ColumnRow>(tableQuery, [schema, name]),
      db.query<ForeignKeyRow>(foreignKeyQuery, [schema, name]),
      db.query<ViewRow>(viewQuery, [schema]),
    ]);
    if (rows.length === 0) return undefined;
    const own = views.rows.find((v) => v.name === name);
    // A view over one table has that table's relationships, on the columns it exposes by the same name.
    const base = own ? relationshipsOf(schema, own.base, (await db.query<ForeignKeyRow>(foreignKeyQuery, [schema, own.base])).rows) : [];
    const relationships = own ? base.filter((r) => sideColumns(r, 'own').every((c) => own.columns.includes(c))) : relationshipsOf(schema, name, fks.rows);
    const columns = new Map<string, ColumnInfo>();
    const privSets = roles.map(() => [new Set<string>(), new Set<string>()] as const);
    for (const r of rows) {
      columns.set(r.name, { name: r.name, type: r.type });
      roles.forEach((_, i) => {
        if (r.privs[i]) privSets[i]![0].add(r.name);
        if (r.privs[i + 3]) privSets[i]![1].add(r.name);
      });
    }
    const byRole = (k: 0 | 1) => Object.fromEntries(roles.map((role, i) => [role, privSets[i]![k]])) as Record<DbRole, Set<string>>;
    return {
      schema,
      name,
      columns,
      primaryKey: rows.filter((r) => r.pk).map((r) => r.name),
      relationships: withViews(relationships, views.rows),
      insertable: byRole(0),
      updatable: byRole(1),
    };
  };

  return {
    async table(schema, name) {
      const key = `${schema}\u0000${name}`;
      const hit = cache.get(key);
      // Only found tables are cached: an unknown name costs one catalog read, like any query.
      if (hit && now() - hit.at < ttl) return hit.info;
      let pending = loading.get(key);
      if (!pending) {
        pending = load(schema, name).finally(() => loading.delete(key));
        loading.set(key, pending);
      }
      const info = await pending;
      if (info) {
        if (cache.size >= 10_000) cache.clear();
        cache.set(key, { info, at: now() });
      } else {
        cache.delete(key);
      }
      return info;
    },
    async functions(schema, name) {
      const key = `${schema}\u0000${name}`;
      const hit = functionCache.get(key);
      if (hit && now() - hit.at < ttl) return hit.info;
      const info = await loadFunctions(db, schema, name);
      if (functionCache.size >= 10_000) functionCache.clear();
      if (info.length) functionCache.set(key, { info, at: now() });
      return info;
    },
    forget(schema, name) {
      cache.delete(`${schema}\u0000${name}`);
      functionCache.delete(`${schema}\u0000${name}`);
    },
    clear() {
      cache.clear();
      functionCache.clear();
    },
  };
}

interface ForeignKeyRow {
  name: string;
  src_schema: string;
  src_table: string;
  tgt_schema: string;
  tgt_table: string;
  src_cols: string[];
  tgt_cols: string[];
  /** The referencing columns are unique (one-to-one) / part of the referencing table's primary key. */
  src_unique: boolean;
  src_in_pk: boolean;
}

// Every foreign key from or to the table, and those of the tables referencing it (junction candidates).
const foreignKeyQuery = `
with t as (
  select c.oid from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = $1 and c.relname = $2)
select con.conname as name, sn.nspname as src_schema, sc.relname as src_table, tn.nspname as tgt_schema, tc.relname as tgt_table,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(num, i)
               join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.i) as src_cols,
       array(select a.attname::text from unnest(con.confkey) with ordinality k(num, i)
               join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.i) as tgt_cols,
       exists(select 1 from pg_catalog.pg_constraint u where u.conrelid = con.conrelid and u.contype in ('p', 'u')
                 and u.conkey <@ con.conkey and con.conkey <@ u.conkey) as src_unique,
       exists(select 1 from pg_catalog.pg_constraint p where p.conrelid = con.conrelid and p.contype = 'p'
                 and con.conkey <@ p.conkey) as src_in_pk
  from pg_catalog.pg_constraint con
  join pg_catalog.pg_class sc on sc.oid = con.conrelid join pg_catalog.pg_namespace sn on sn.oid = sc.relnamespace
  join pg_catalog.pg_class tc on tc.oid = con.confrelid join pg_catalog.pg_namespace tn on tn.oid = tc.relnamespace
 where con.contype = 'f'
   and (con.conrelid in (select oid from t) or con.confrelid in (select oid from t)
        or con.conrelid in (select f.conrelid from pg_catalog.pg_constraint f where f.contype = 'f' and f.confrelid in (select oid from t)))
 order by con.conname`;

const zip = (a: readonly string[], b: readonly string[]) => a.map((x, i) => [x, b[i]!] as const);

/** PostgREST's relationships of `schema.name`: many-to-one, one-to-many, one-to-one, many-to-many via junctions. */
function relationshipsOf(schema: string, name: string, fks: readonly ForeignKeyRow[]): Relationship[] {
  const out: Relationship[] = [];
  const isT = (s: string, t: string) => s === schema && t === name;
  for (const fk of fks) {
    if (isT(fk.src_schema, fk.src_table) && fk.tgt_schema === schema) {
      out.push({ constraint: fk.name, cardinality: fk.src_unique ? 'one-to-one' : 'many-to-one', target: fk.tgt_table, columns: zip(fk.src_cols, fk.tgt_cols) });
    }
    if (isT(fk.tgt_schema, fk.tgt_table) && fk.src_schema === schema) {
      out.push({ constraint: fk.name, cardinality: fk.src_unique ? 'one-to-one' : 'one-to-many', target: fk.src_table, columns: zip(fk.tgt_cols, fk.src_cols) });
      // A junction: another key of the same referencing table, both within its primary key.
      if (!fk.src_in_pk || isT(fk.src_schema, fk.src_table)) continue;
      for (const other of fks) {
        if (other === fk || other.src_schema !== fk.src_schema || other.src_table !== fk.src_table || !other.src_in_pk || other.tgt_schema !== schema) continue;
        out.push({
          constraint: fk.src_table,
          cardinality: 'many-to-many',
          target: other.tgt_table,
          columns: [],
          junction: { name: fk.src_table, source: zip(fk.src_cols, fk.tgt_cols), target: zip(other.src_cols, other.tgt_cols), constraints: [fk.name, other.name] },
        });
      }
    }
  }
  return out;
}

interface ViewRow {
  name: string;
  base: string;
  columns: string[];
}

// Views (and materialized views) of the schema over exactly one table, with their column names.
const viewQuery = `
select v.relname as name, min(b.relname) as base,
       array(select a.attname::text from pg_catalog.pg_attribute a where a.attrelid = v.oid and a.attnum > 0 and not a.attisdropped) as columns
  from pg_catalog.pg_class v
  join pg_catalog.pg_namespace n on n.oid = v.relnamespace
  join pg_catalog.pg_rewrite r on r.ev_class = v.oid
  join pg_catalog.pg_depend d on d.objid = r.oid and d.classid = 'pg_catalog.pg_rewrite'::regclass
   and d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid <> v.oid
  join pg_catalog.pg_class b on b.oid = d.refobjid and b.relkind in ('r', 'p') and b.relnamespace = v.relnamespace
 where n.nspname = $1 and v.relkind in ('v', 'm')
 group by v.oid, v.relname
having count(distinct b.oid) = 1`;

/** The columns a relationship joins on: this table's side, or the target's. */
function sideColumns(r: Relationship, side: 'own' | 'target'): string[] {
  if (r.junction) return (side === 'own' ? r.junction.source : r.junction.target).map((p) => p[1]);
  return r.columns.map((p) => (side === 'own' ? p[0] : p[1]));
}

/** Every relationship to a table also leads to each view over it that exposes the joined columns. */
function withViews(rels: readonly Relationship[], views: readonly ViewRow[]): Relationship[] {
  const out = [...rels];
  for (const r of rels) {
    for (const v of views) {
      if (v.base === r.target && sideColumns(r, 'target').every((c) => v.columns.includes(c))) out.push({ ...r, target: v.name });
    }
  }
  return out;
}

interface FunctionRow {
  name: string;
  arg_names: string[] | null;
  arg_modes: string[] | null;
  arg_types: string[];
  n_defaults: number;
  returns: string;
  returns_set: boolean;
  volatile: boolean;
  ret_table: string | null;
  ret_columns: { name: string; type: string }[] | null;
}

// Overloads of one function: arguments (IN side), defaults, and the result's shape.
const functionQuery = `
select p.proname as name, p.proargnames as arg_names, p.proargmodes::text[] as arg_modes,
       array(select t::regtype::text from unnest(p.proargtypes) t) as arg_types,
       p.pronargdefaults as n_defaults, p.prorettype::regtype::text as returns, p.proretset as returns_set,
       p.provolatile = 'v' as volatile,
       (select c.relname from pg_catalog.pg_class c where c.oid = rt.typrelid and c.relkind in ('r', 'v', 'p', 'm')
           and c.relnamespace = p.pronamespace) as ret_table,
       case when rt.typrelid <> 0 then
              (select json_agg(json_build_object('name', a.attname, 'type', a.atttypid::regtype::text) order by a.attnum)
                 from pg_catalog.pg_attribute a where a.attrelid = rt.typrelid and a.attnum > 0 and not a.attisdropped)
            when p.prorettype = 'record'::regtype and p.proallargtypes is not null then
              (select json_agg(json_build_object('name', x.name, 'type', x.type::regtype::text) order by x.i)
                 from unnest(p.proargnames, p.proallargtypes, p.proargmodes::text[]) with ordinality x(name, type, mode, i)
                where x.mode in ('o', 'b', 't'))
       end as ret_columns
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_type rt on rt.oid = p.prorettype
 where n.nspname = $1 and p.proname = $2 and p.prokind = 'f'`;

async function loadFunctions(db: Queryable, schema: string, name: string): Promise<FunctionInfo[]> {
  const { rows } = await db.query<FunctionRow>(functionQuery, [schema, name]);
  return rows.map((r) => {
    // proargnames/proargmodes cover every argument (OUT too); proargtypes only the IN side.
    const modes = r.arg_modes ?? r.arg_types.map(() => 'i');
    const names = r.arg_names ?? [];
    const inNames = modes.map((m, i) => [m, names[i] ?? ''] as const).filter(([m]) => m === 'i' || m === 'b' || m === 'v').map(([, n]) => n);
    const firstDefault = r.arg_types.length - r.n_defaults;
    return {
      schema,
      name: r.name,
      args: r.arg_types.map((type, i) => ({ name: inNames[i] ?? '', type, hasDefault: i >= firstDefault })),
      returns: r.returns,
      returnsSet: r.returns_set,
      columns: r.ret_columns ? new Map(r.ret_columns.map((c) => [c.name, c])) : null,
      table: r.ret_table,
      volatile: r.volatile,
    };
  });
}
