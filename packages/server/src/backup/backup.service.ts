import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { basename, join } from 'node:path';
import { createScratchDatabase, openPostgres, type Db, type Queryable } from '@hallpass/db';
import type { Config } from '../config/config.ts';
import type { Clock } from '../deps.ts';
import { BackupError } from './backup.errors.ts';
import {
  backupFilesFor,
  checkBackupFiles,
  commitTempFile,
  ensureBackupDir,
  listBackups,
  resolveBackupFiles,
  sealBackup,
  sha256File,
  tempPathFor,
  type BackupFiles,
} from './backup.files.ts';
import {
  compareTableStats,
  readMigrationRecords,
  readServerVersion,
  readTableStats,
  type BackupManifest,
} from './backup.manifest.ts';
import { restorePglite } from './backup.pglite.ts';
import { dumpPostgres, restorePostgres } from './backup.postgres.ts';
import { pruneBackups } from './backup.retention.ts';

/** Progress on long work: one line at a time (the CLI writes them to stderr). */
export type Progress = (line: string) => void;

export interface BackupDeps {
  config: Readonly<Config>;
  db: Db;
  clock: Clock;
}

export interface TakenBackup {
  files: BackupFiles;
  manifest: BackupManifest;
  /** Older backups removed by the retention settings. */
  pruned: string[];
}

type Snapshot = Pick<BackupManifest, 'serverVersion' | 'migrations' | 'tables'>;

async function readSnapshot(q: Queryable): Promise<Snapshot> {
  return { serverVersion: await readServerVersion(q), migrations: await readMigrationRecords(q), tables: await readTableStats(q) };
}

/**
 * Takes a consistent backup of the whole database (Hallpass's schemas and the app's tables) into
 * the backup dir: `pg_dump -Fc` on a PostgreSQL server, a data-dir copy on the embedded database.
 * The manifest's row counts and checksums are read in the same snapshot as the dump. Then applies
 * the retention settings.
 */
export async function takeBackup(deps: BackupDeps, progress: Progress = () => {}): Promise<TakenBackup> {
  const { config, db } = deps;
  const takenAt = deps.clock.now();
  await ensureBackupDir(config.backup.dir);
  const files = backupFilesFor(config.backup.dir, takenAt, db.kind);
  const temp = tempPathFor(files.payload);
  let snapshot: Snapshot;
  try {
    if (db.kind === 'postgres') {
      if (!config.databaseUrl) throw new TypeError('a PostgreSQL backup needs config.databaseUrl');
      progress(`pg_dump of the database into ${basename(files.payload)}`);
      snapshot = await dumpPostgres(config.databaseUrl, { binDir: config.backup.pgBinDir }, temp, readSnapshot);
    } else {
      const dump = db.dumpDataDir;
      if (!dump) throw new TypeError('this database cannot copy its data dir');
      progress(`copying the embedded database into ${basename(files.payload)}`);
      // Inside a transaction nothing else runs (PGlite has one connection and queues the rest), so
      // what the manifest reads and the files copied are the same state. The checkpoint first
      // writes every committed change to the data files, so the copy needs no WAL replay.
      const { tar, result } = await db.transaction(async (tx) => {
        await tx.exec('checkpoint');
        const result = await readSnapshot(tx);
        return { tar: await dump(), result };
      });
      await writeFile(temp, gzipSync(tar), { mode: 0o600, flag: 'wx' });
      snapshot = result;
    }
    await commitTempFile(temp, files.payload);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  progress('writing the manifest and checksums');
  const manifest: BackupManifest = {
    format: 'hallpass-backup/1',
    backend: db.kind,
    takenAt: takenAt.toISOString(),
    file: basename(files.payload),
    bytes: (await stat(files.payload)).size,
    sha256: await sha256File(files.payload),
    ...snapshot,
  };
  await sealBackup(files, manifest);
  const pruned = await pruneBackups(config.backup);
  for (const p of pruned) progress(`removed ${p} (retention)`);
  return { files, manifest, pruned };
}

/** A database to restore into: a PostgreSQL database (URL) or an embedded data dir. */
export type RestoreTarget = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string };

export interface RestoreOptions {
  force?: boolean;
  pgBinDir?: string | undefined;
  progress?: Progress;
  clock?: Clock;
}

/**
 * Checks the backup's SHA-256 and size, restores it into `target`, and compares every table's rows
 * and checksum with the manifest. Leaves the restored database open for the caller.
 */
export async function restoreInto(target: RestoreTarget, files: BackupFiles, manifest: BackupManifest, options: RestoreOptions = {}): Promise<Db> {
  const progress = options.progress ?? (() => {});
  if (manifest.backend !== target.kind) {
    throw new BackupError(
      'backup_invalid',
      manifest.backend === 'postgres'
        ? `${manifest.file} is a PostgreSQL backup: set DATABASE_URL to the database to restore it into`
        : `${manifest.file} is an embedded-database backup: unset DATABASE_URL to restore it into HALLPASS_DATA_DIR`,
    );
  }
  let db: Db;
  if (target.kind === 'postgres') {
    progress(`pg_restore into ${new URL(target.url).pathname.slice(1)}`);
    await restorePostgres(target.url, { binDir: options.pgBinDir }, files.payload, options.force ?? false);
    db = await openPostgres({ connectionString: target.url, max: 4 });
  } else {
    progress(`unpacking into ${target.dir}`);
    const restored = await restorePglite(target.dir, files.payload, options.force ?? false, (options.clock ?? { now: () => new Date() }).now());
    if (restored.movedAside) progress(`the data dir that was there is kept at ${restored.movedAside}`);
    db = restored.db;
  }
  try {
    progress('comparing row counts and checksums with the manifest');
    compareTableStats(manifest.tables, await db.transaction((tx) => readTableStats(tx)));
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** The backup at `path`, or the newest in the backup dir; its files checked (SHA-256, size). */
export async function openBackup(config: Readonly<Config>, path?: string): Promise<{ files: BackupFiles; manifest: BackupManifest }> {
  let files: BackupFiles | undefined;
  if (path) files = await resolveBackupFiles(path);
  else files = (await listBackups(config.backup.dir)).at(-1);
  if (!files) throw new BackupError('backup_not_found', `no backup in ${config.backup.dir}`);
  return { files, manifest: await checkBackupFiles(files) };
}

/** Where `restore` writes: the configured PostgreSQL database, or the embedded data dir. */
export function configuredTarget(config: Readonly<Config>): RestoreTarget {
  return config.databaseUrl ? { kind: 'postgres', url: config.databaseUrl } : { kind: 'pglite', dir: join(config.dataDir, 'data') };
}

/**
 * `hallpass restore`: checks the backup, restores it into the configured (empty) database, compares
 * it with the manifest. Migrations are not run: the server applies newer ones when it starts.
 */
export async function restoreBackup(config: Readonly<Config>, path: string, options: RestoreOptions = {}): Promise<BackupManifest> {
  const progress = options.progress ?? (() => {});
  progress(`checking ${path}`);
  const { files, manifest } = await openBackup(config, path);
  const db = await restoreInto(configuredTarget(config), files, manifest, { ...options, pgBinDir: config.backup.pgBinDir });
  await db.close();
  return manifest;
}

/** A scratch database to restore a backup into for verification, and how to remove it. */
export async function createScratchTarget(config: Readonly<Config>, backend: 'postgres' | 'pglite'): Promise<{ target: RestoreTarget; drop(): Promise<void> }> {
  if (backend === 'postgres') {
    if (!config.databaseUrl) throw new BackupError('backup_invalid', 'verifying a PostgreSQL backup needs DATABASE_URL (a user that may create databases)');
    const scratch = await createScratchDatabase(config.databaseUrl, 'hallpass_verify');
    return { target: { kind: 'postgres', url: scratch.url }, drop: scratch.drop };
  }
  const dir = await mkdtemp(join(tmpdir(), 'hallpass-verify-'));
  return { target: { kind: 'pglite', dir: join(dir, 'data') }, drop: () => rm(dir, { recursive: true, force: true }) };
}
