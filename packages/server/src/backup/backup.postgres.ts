import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { dbRoles, type Queryable } from '@hallpass/db';
import { BackupError } from './backup.errors.ts';

export interface PgToolsOptions {
  /** Directory of pg_dump/pg_restore; PATH when absent. */
  binDir: string | undefined;
}

const toolPath = (opts: PgToolsOptions, tool: 'pg_dump' | 'pg_restore') => (opts.binDir ? join(opts.binDir, tool) : tool);

/**
 * The connection for a child process: the URL without its password (which would show in `ps`), the
 * password in PGPASSWORD instead.
 */
function childConnection(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  u.password = '';
  return { dbname: u.toString(), env };
}

/** Runs a PostgreSQL client tool; its stderr is kept for the error message. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new BackupError('tool_missing', `${command} not found: install the PostgreSQL client tools (Debian: postgresql-client) or set BACKUP_PG_BIN_DIR`)
          : e,
      ),
    );
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} exited with ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`)),
    );
  });
}

/**
 * pg_dump must be at least as new as the server (an older one refuses or, worse, misses what it
 * does not know). Checked before dumping, with a message that says what to install.
 */
export async function checkToolVersion(opts: PgToolsOptions, q: Queryable, tool: 'pg_dump' | 'pg_restore'): Promise<number> {
  const out = await run(toolPath(opts, tool), ['--version']);
  const toolMajor = Number(/\(PostgreSQL\) (\d+)/.exec(out)?.[1]);
  const { rows } = await q.query<{ v: string }>("select current_setting('server_version_num') as v");
  const serverMajor = Math.floor(Number(rows[0]!.v) / 10_000);
  if (!toolMajor || toolMajor < serverMajor) {
    throw new BackupError(
      'tool_too_old',
      `${tool} ${toolMajor || '(unknown version)'} is older than the PostgreSQL server (${serverMajor}): install postgresql-client-${serverMajor} and set BACKUP_PG_BIN_DIR=/usr/lib/postgresql/${serverMajor}/bin`,
    );
  }
  return toolMajor;
}

/**
 * `pg_dump -Fc` of the whole database into `file`, in the snapshot of an open repeatable-read
 * transaction that `inside` reads first (the manifest), so both see exactly the same data.
 */
export async function dumpPostgres<T>(
  url: string,
  opts: PgToolsOptions,
  file: string,
  inside: (q: Queryable) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await checkToolVersion(opts, client, 'pg_dump');
    await client.query('begin isolation level repeatable read read only');
    const { rows } = await client.query<{ id: string }>('select pg_export_snapshot() as id');
    const result = await inside(client);
    const { dbname, env } = childConnection(url);
    try {
      await run(toolPath(opts, 'pg_dump'), ['--format=custom', '--no-unlogged-table-data', `--snapshot=${rows[0]!.id}`, `--file=${file}`, `--dbname=${dbname}`], env);
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    await client.query('commit');
    return result;
  } finally {
    await client.end();
  }
}

/** Relations outside the system schemas: a database with none is empty. */
export async function countUserRelations(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'`,
  );
  return rows[0]!.n;
}

/**
 * `pg_restore` of a custom-format dump into the database at `url`, in one transaction (all or
 * nothing). The target must be empty; with `force` its schemas are dropped first. The three
 * client roles are cluster-wide, not in a dump: they are created first when missing.
 */
export async function restorePostgres(url: string, opts: PgToolsOptions, file: string, force: boolean): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await checkToolVersion(opts, client, 'pg_restore');
    if ((await countUserRelations(client)) > 0) {
      if (!force) {
        throw new BackupError('target_not_empty', `the database ${new URL(url).pathname.slice(1)} is not empty; restore into an empty database, or pass --force to replace what it holds`);
      }
      const { rows } = await client.query<{ nspname: string }>(
        `select nspname from pg_namespace where nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg\\_%'`,
      );
      for (const r of rows) await client.query(`drop schema ${pg.escapeIdentifier(r.nspname)} cascade`);
      await client.query('create schema public');
    }
    for (const role of dbRoles) {
      const { rows } = await client.query('select 1 from pg_roles where rolname = $1', [role]);
      if (rows.length) continue;
      // Another restore or migration may create it at the same moment; either way it then exists.
      await client.query(`create role ${pg.escapeIdentifier(role)} nologin noinherit`).catch(() => {});
      // As migration 0001 does: the service role bypasses RLS (a superuser may grant it).
      if (role === 'service_role') await client.query('alter role service_role bypassrls').catch(() => {});
    }
  } finally {
    await client.end();
  }
  const { dbname, env } = childConnection(url);
  await run(toolPath(opts, 'pg_restore'), ['--exit-on-error', '--single-transaction', `--dbname=${dbname}`, file], env);
}
