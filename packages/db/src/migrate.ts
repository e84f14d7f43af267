import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './types.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** This package's own migrations: roles, schemas and the `auth.*` claim helpers. */
export const coreMigrationsDir = fileURLToPath(new URL('../migrations', import.meta.url));

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * Reads `NNNN_name.sql` files from each directory (features keep their SQL beside their code) and
 * orders them by number. Two files with one number is a mistake caught here, not in production.
 */
export function loadMigrations(dirs: readonly string[]): Migration[] {
  const byVersion = new Map<number, Migration>();
  for (const dir of dirs) {
    for (const file of readdirSync(dir)) {
      const m = fileName.exec(file);
      if (!m) continue;
      const version = Number(m[1]);
      const sql = readFileSync(join(dir, file), 'utf8');
      const existing = byVersion.get(version);
      if (existing) throw new Error(`two migrations numbered ${m[1]}: ${existing.name} and ${basename(file)}`);
      byVersion.set(version, {
        version,
        name: file,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      });
    }
  }
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

// Any fixed 64-bit number: every Hallpass instance takes the same lock.
const migrationLockKey = 7_316_480_112;

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
    await tx.query(`create schema if not exists hallpass`);
    await tx.query(`create table if not exists hallpass.schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`);
    const { rows } = await tx.query<{ version: number; checksum: string; name: string }>(
      'select version, checksum, name from hallpass.schema_migrations',
    );
    const applied = new Map(rows.map((r) => [r.version, r]));
    const done: string[] = [];
    for (const m of migrations) {
      const prior = applied.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum) {
          throw new Error(`migration ${m.name} changed after it was applied; add a new migration instead`);
        }
        continue;
      }
      // A file's statements run as one script; the surrounding transaction keeps it all-or-nothing.
      await tx.exec(m.sql);
      await tx.query('insert into hallpass.schema_migrations (version, name, checksum) values ($1, $2, $3)', [
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

