import type { DbRole, Queryable } from '@hallpass/db';

export interface ColumnInfo {
  name: string;
  /** The column's type as `regtype` prints it (quoted where needed): used in parameter casts. */
  type: string;
}

export interface TableInfo {
  schema: string;
  name: string;
  columns: ReadonlyMap<string, ColumnInfo>;
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
  /** Forgets a table (a column was missing, or the table vanished): the next lookup reads again. */
  forget(schema: string, name: string): void;
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

  const load = async (schema: string, name: string): Promise<TableInfo | undefined> => {
    const { rows } = await db.query<ColumnRow>(tableQuery, [schema, name]);
    if (rows.length === 0) return undefined;
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
    forget(schema, name) {
      cache.delete(`${schema}\u0000${name}`);
    },
  };
}
