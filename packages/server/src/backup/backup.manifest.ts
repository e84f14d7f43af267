import type { Queryable } from '@hallpass/db';
import { BackupError } from './backup.errors.ts';

/** What a backup recorded about itself, beside it as `<name>.manifest.json`. */
export interface BackupManifest {
  format: 'hallpass-backup/1';
  backend: 'postgres' | 'pglite';
  /** When the snapshot was taken (UTC). */
  takenAt: string;
  /** The payload file's name, size and SHA-256. */
  file: string;
  bytes: number;
  sha256: string;
  /** `server_version` of the database it came from. */
  serverVersion: string;
  /** `hallpass.schema_migrations` as it was: `source version name checksum`. */
  migrations: string[];
  /** Every (logged) table of every non-system schema: rows and an order-independent checksum of them. */
  tables: Record<string, TableStats>;
}

export interface TableStats {
  rows: number;
  checksum: string;
}

/**
 * Row counts and checksums of every table outside the system schemas, read in `q`'s snapshot. The
 * checksum sums the first 60 bits of each row's md5 (order-independent, streaming, no memory per
 * row), over the row's text with the output settings pinned so the same data gives the same text.
 * `row_security = off` makes a table the reader could only partly see an error, never a wrong count.
 * Unlogged tables (rate-limit counters) are left out: their rows are not kept by a backup (a data-dir
 * copy empties them on start, as a crash would; pg_dump is told to skip them).
 */
export async function readTableStats(q: Queryable): Promise<Record<string, TableStats>> {
  await q.query(`select set_config('timezone', 'UTC', true), set_config('datestyle', 'ISO, YMD', true),
    set_config('intervalstyle', 'postgres', true), set_config('extra_float_digits', '1', true),
    set_config('bytea_output', 'hex', true), set_config('row_security', 'off', true)`);
  const { rows: tables } = await q.query<{ schema: string; name: string }>(
    `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and c.relpersistence = 'p' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
     order by 1, 2`,
  );
  const out: Record<string, TableStats> = {};
  for (const t of tables) {
    const name = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
    const { rows } = await q.query<{ n: string; sum: string }>(
      `select count(*)::text as n, coalesce(sum(('x' || substr(md5(hallpass_backup_row::text), 1, 15))::bit(60)::bigint), 0)::text as sum
       from only ${name} as hallpass_backup_row`,
    );
    out[`${t.schema}.${t.name}`] = { rows: Number(rows[0]!.n), checksum: rows[0]!.sum };
  }
  return out;
}

export async function readMigrationRecords(q: Queryable): Promise<string[]> {
  const { rows } = await q.query<{ line: string }>(
    `select concat_ws(' ', coalesce(to_jsonb(m) ->> 'source', 'hallpass'), version, name, checksum) as line
     from hallpass.schema_migrations m order by 1`,
  );
  return rows.map((r) => r.line);
}

export async function readServerVersion(q: Queryable): Promise<string> {
  const { rows } = await q.query<{ v: string }>("select current_setting('server_version') as v");
  return rows[0]!.v;
}

/** Throws `contents_differ` naming every table whose rows or checksum differ from the manifest. */
export function compareTableStats(expected: Record<string, TableStats>, actual: Record<string, TableStats>): void {
  const problems: string[] = [];
  for (const [table, want] of Object.entries(expected)) {
    const got = actual[table];
    if (!got) problems.push(`${table} is missing`);
    else if (got.rows !== want.rows) problems.push(`${table} has ${got.rows} rows, the backup recorded ${want.rows}`);
    else if (got.checksum !== want.checksum) problems.push(`${table}'s rows differ from what the backup recorded`);
  }
  for (const table of Object.keys(actual)) if (!(table in expected)) problems.push(`${table} was not in the backup`);
  if (problems.length) throw new BackupError('contents_differ', `the restored data differs from the backup's manifest: ${problems.join('; ')}`);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
