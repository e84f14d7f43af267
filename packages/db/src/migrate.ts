import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db, Queryable } from './types.ts';

/**
 * Whose migration a file is. Hallpass's own and the app's (`APP_MIGRATIONS_DIR`) are numbered
 * separately, so Hallpass can keep adding migrations without ever taking a number an app uses.
 */
export type MigrationSource = 'hallpass' | 'app';

export interface Migration {
  source: MigrationSource;
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** This package's own migrations: roles, schemas and the `auth.*` claim helpers. */
export const coreMigrationsDir = fileURLToPath(new URL('../migrations', import.meta.url));

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The SHA-256 the runner records for a migration file (hex of its exact bytes as UTF-8 text). */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/**
 * Reads `NNNN_name.sql` files from each directory (features keep their SQL beside their code) and
 * orders them by number. Two files with one number in one source is a mistake caught here, not in
 * production.
 * @param source whose migrations these are. @default 'hallpass'
 */
export function loadMigrations(dirs: readonly string[], source: MigrationSource = 'hallpass'): Migration[] {
  const byVersion = new Map<number, Migration>();
  for (const dir of dirs) {
    for (const file of readdirSync(dir)) {
      const m = fileName.exec(file);
      if (!m) continue;
      const version = Number(m[1]);
      const sql = readFileSync(join(dir, file), 'utf8');
      const existing = byVersion.get(version);
      if (existing) throw new Error(`two migrations numbered ${m[1]}: ${existing.name} and ${basename(file)}`);
      byVersion.set(version, { source, version, name: file, sql, checksum: migrationChecksum(sql) });
    }
  }
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

// Any fixed 64-bit number: every Hallpass instance takes the same lock.
const migrationLockKey = 7_316_480_112;

/**
 * Before the two namespaces, one numbering was shared and apps were told to start at 0020. A row
 * recorded then is Hallpass's when its file is one of Hallpass's (or its number is below 20, the
 * numbers Hallpass reserved); every other row is the app's.
 */
const legacyAppNumbersFrom = 20;

interface AppliedRow {
  source: MigrationSource;
  version: number;
  name: string;
  checksum: string;
}

const key = (m: { source: MigrationSource; version: number }) => `${m.source}:${m.version}`;

/** Hallpass's migrations first, then the app's (apps build on Hallpass's tables), each by number. */
function inApplyOrder(migrations: readonly Migration[]): Migration[] {
  return [...migrations].sort((a, b) => (a.source === b.source ? a.version - b.version : a.source === 'hallpass' ? -1 : 1));
}

async function hasSourceColumn(q: Queryable): Promise<boolean> {
  const { rows } = await q.query(
    `select 1 from information_schema.columns
     where table_schema = 'hallpass' and table_name = 'schema_migrations' and column_name = 'source'`,
  );
  return rows.length > 0;
}

async function migrationsTableExists(q: Queryable): Promise<boolean> {
  const { rows } = await q.query<{ t: string | null }>(`select to_regclass('hallpass.schema_migrations')::text as t`);
  return rows[0]?.t != null;
}

/**
 * What the database has applied. A table written by a runner older than the namespaces (no
 * `source` column) is classified in memory by the legacy rule; `migrate` then stores that.
 */
async function readApplied(q: Queryable, migrations: readonly Migration[]): Promise<AppliedRow[]> {
  if (!(await migrationsTableExists(q))) return [];
  if (await hasSourceColumn(q)) {
    const { rows } = await q.query<AppliedRow>('select source, version, name, checksum from hallpass.schema_migrations');
    return rows;
  }
  const hallpassNames = new Set(migrations.filter((m) => m.source === 'hallpass').map((m) => m.name));
  const { rows } = await q.query<Omit<AppliedRow, 'source'>>('select version, name, checksum from hallpass.schema_migrations');
  return rows.map((r) => ({ ...r, source: hallpassNames.has(r.name) || r.version < legacyAppNumbersFrom ? 'hallpass' : 'app' }));
}

export interface MigrationStatus {
  /** Files not yet applied, in the order `migrate` would apply them. */
  pending: Migration[];
  /** Applied migrations whose file has changed since (never edit a landed migration). */
  changed: string[];
  /** Applied migrations this code does not know (a database made by a newer release). */
  unknown: string[];
}

/** Compares the database with the migration files, changing nothing. */
export async function migrationStatus(q: Queryable, migrations: readonly Migration[]): Promise<MigrationStatus> {
  const applied = new Map((await readApplied(q, migrations)).map((r) => [key(r), r]));
  const known = new Set(migrations.map(key));
  const status: MigrationStatus = { pending: [], changed: [], unknown: [] };
  for (const m of inApplyOrder(migrations)) {
    const prior = applied.get(key(m));
    if (!prior) status.pending.push(m);
    else if (prior.checksum !== m.checksum) status.changed.push(`${m.source} ${m.name}`);
  }
  for (const [k, r] of applied) if (!known.has(k)) status.unknown.push(`${r.source} ${r.name}`);
  return status;
}

/**
 * Brings `hallpass.schema_migrations` to the current shape: created with the `source` namespace, or,
 * when an older runner made it, given the column (rows classified by the legacy rule) and the
 * primary key (source, version).
 */
async function prepareMigrationsTable(q: Queryable, migrations: readonly Migration[]): Promise<void> {
  await q.query(`create schema if not exists hallpass`);
  if (await migrationsTableExists(q)) {
    if (await hasSourceColumn(q)) return;
    const rows = await readApplied(q, migrations);
    await q.query(`alter table hallpass.schema_migrations add column source text not null default 'hallpass'`);
    await q.query(
      `update hallpass.schema_migrations s set source = r.source
       from unnest($1::int[], $2::text[]) as r(version, source) where s.version = r.version`,
      [rows.map((r) => r.version), rows.map((r) => r.source)],
    );
    await q.query(`alter table hallpass.schema_migrations drop constraint schema_migrations_pkey, add primary key (source, version)`);
    return;
  }
  await q.query(`create table hallpass.schema_migrations (
    source text not null default 'hallpass' check (source in ('hallpass', 'app')),
    version integer not null,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    primary key (source, version)
  )`);
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so two instances starting
 * together apply each migration once: the second waits, then finds them recorded. A landed migration
 * whose file changed is refused (migrations are never edited; add a new one).
 * @returns the names of the migrations it applied.
 */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<string[]> {
  return db.transaction(async (tx) => {
    // Migrations (and waiting for another instance's) may take longer than the pool's statement_timeout.
    await tx.query("select set_config('statement_timeout', '0', true)");
    await tx.query('select pg_advisory_xact_lock($1)', [migrationLockKey]);
    await prepareMigrationsTable(tx, migrations);
    const status = await migrationStatus(tx, migrations);
    if (status.changed.length) {
      throw new Error(`migration ${status.changed.join(', ')} changed after it was applied; add a new migration instead`);
    }
    const done: string[] = [];
    for (const m of status.pending) {
      // A file's statements run as one script; the surrounding transaction keeps it all-or-nothing.
      await tx.exec(m.sql);
      await tx.query('insert into hallpass.schema_migrations (source, version, name, checksum) values ($1, $2, $3, $4)', [
        m.source,
        m.version,
        m.name,
        m.checksum,
      ]);
      done.push(m.name);
    }
    // Schema caches (the data API's) reload when the schema changed, as PostgREST's do on this NOTIFY.
    if (done.length) await tx.query("select pg_notify('pgrst', 'reload schema')");
    return done;
  });
}
