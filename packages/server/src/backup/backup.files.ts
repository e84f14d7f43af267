import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BackupError } from './backup.errors.ts';
import type { BackupManifest } from './backup.manifest.ts';

/**
 * A backup is three files in the backup dir, named by the UTC time it was taken:
 * `hallpass-20261128T090000Z.pgdump` (or `.tar.gz` for the embedded database), its
 * `.manifest.json`, and `.sha256` (sha256sum format, both files), written last: a backup without
 * its `.sha256` is incomplete and ignored.
 */
export interface BackupFiles {
  base: string;
  payload: string;
  manifest: string;
  checksums: string;
}

const baseName = /^(hallpass-\d{8}T\d{6}(?:\d{3})?Z)\.(pgdump|tar\.gz|manifest\.json|sha256)$/;

export function backupStamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '$1Z');
}

export function backupFilesFor(dir: string, at: Date, backend: 'postgres' | 'pglite'): BackupFiles {
  const base = join(dir, `hallpass-${backupStamp(at)}`);
  return filesOf(base, backend);
}

function filesOf(base: string, backend: 'postgres' | 'pglite'): BackupFiles {
  return {
    base,
    payload: `${base}.${backend === 'postgres' ? 'pgdump' : 'tar.gz'}`,
    manifest: `${base}.manifest.json`,
    checksums: `${base}.sha256`,
  };
}

/** The backup dir, created with mode 0700 (backups hold every user's data). */
export async function ensureBackupDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** A temporary name beside `target`, on the same filesystem so the final rename is atomic. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Makes a fully written temp file the real one: fsync the file, rename over the target, fsync the
 * directory so the rename itself survives a crash. A reader sees the old state or the whole file.
 */
export async function commitTempFile(temp: string, target: string): Promise<void> {
  const fh = await open(temp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(temp, target);
  const dh = await open(dirname(target), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Writes `data` to `target` atomically (temp + fsync + rename), mode 0600. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const temp = tempPathFor(target);
  const fh = await open(temp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
  try {
    await commitTempFile(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Finishes a backup: the manifest, then the `.sha256` of both files (its presence marks completion). */
export async function sealBackup(files: BackupFiles, manifest: BackupManifest): Promise<void> {
  await writeFileAtomic(files.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
  const lines = [`${manifest.sha256}  ${basename(files.payload)}`, `${await sha256File(files.manifest)}  ${basename(files.manifest)}`];
  await writeFileAtomic(files.checksums, `${lines.join('\n')}\n`);
}

/** The complete backups in `dir` (those with a `.sha256`), oldest first. */
export async function listBackups(dir: string): Promise<BackupFiles[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const sealed = new Set(names.filter((n) => n.endsWith('.sha256')).map((n) => n.slice(0, -'.sha256'.length)));
  const out: BackupFiles[] = [];
  for (const n of names.sort()) {
    const m = baseName.exec(n);
    if (!m || !sealed.has(m[1]!) || (m[2] !== 'pgdump' && m[2] !== 'tar.gz')) continue;
    out.push(filesOf(join(dir, m[1]!), m[2] === 'pgdump' ? 'postgres' : 'pglite'));
  }
  return out;
}

/** Whichever of a backup's three files (or its base name) was given, the set it belongs to. */
export async function resolveBackupFiles(path: string): Promise<BackupFiles> {
  const m = baseName.exec(basename(path));
  const base = m ? join(dirname(path), m[1]!) : path;
  for (const backend of ['postgres', 'pglite'] as const) {
    const files = filesOf(base, backend);
    if (await exists(files.payload)) return files;
  }
  throw new BackupError('backup_not_found', `no backup at ${path} (expected ${base}.pgdump or ${base}.tar.gz)`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a backup before anything reads it: the `.sha256` must be there and match both files, and
 * the payload must have the size the manifest recorded. A truncated or altered file is refused.
 * @returns the manifest.
 */
export async function checkBackupFiles(files: BackupFiles): Promise<BackupManifest> {
  let listed: string;
  try {
    listed = await readFile(files.checksums, 'utf8');
  } catch {
    throw new BackupError('backup_invalid', `${basename(files.checksums)} is missing: the backup is incomplete or not one of Hallpass's`);
  }
  const expected = new Map<string, string>();
  for (const line of listed.split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new BackupError('backup_invalid', `${basename(files.checksums)} is malformed`);
    expected.set(m[2]!, m[1]!);
  }
  const mustMatch = async (path: string) => {
    const name = basename(path);
    if (!expected.has(name)) throw new BackupError('backup_invalid', `${basename(files.checksums)} does not list ${name}`);
    if ((await sha256File(path)) !== expected.get(name)) {
      throw new BackupError('backup_invalid', `${name} does not match its SHA-256: the file was altered or damaged; refusing it`);
    }
  };
  await mustMatch(files.manifest);
  const manifest = JSON.parse(await readFile(files.manifest, 'utf8')) as BackupManifest;
  const { size } = await stat(files.payload);
  if (size < manifest.bytes) {
    throw new BackupError('backup_invalid', `${basename(files.payload)} is truncated: ${size} of ${manifest.bytes} bytes; refusing it`);
  }
  await mustMatch(files.payload);
  return manifest;
}

export async function removeBackup(files: BackupFiles): Promise<void> {
  // The .sha256 goes first: a half-removed backup is then an incomplete one, never listed.
  for (const f of [files.checksums, files.manifest, files.payload]) await rm(f, { force: true });
}
