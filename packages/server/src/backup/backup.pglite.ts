import { readdir, readFile, rename } from 'node:fs/promises';
import { dataDirHolder, loadPgliteDataDir, openPglite, type Db } from '@hallpass/db';
import { backupStamp } from './backup.files.ts';
import { BackupError } from './backup.errors.ts';

async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * Unpacks a data-dir tarball into `dir` and opens it. The directory must be free (no process has it
 * open) and empty; with `force` a non-empty one is moved aside to `<dir>.before-restore-<time>`,
 * never deleted.
 * @returns the opened database and, when one was moved aside, where the old directory went.
 */
export async function restorePglite(dir: string, tarball: string, force: boolean, now: Date): Promise<{ db: Db; movedAside?: string }> {
  const pid = dataDirHolder(dir);
  if (pid) {
    throw new BackupError('data_dir_in_use', `the embedded database ${dir} is open in process ${pid}: stop the server before restoring into it`);
  }
  let movedAside: string | undefined;
  if (!(await isEmptyDir(dir))) {
    if (!force) throw new BackupError('target_not_empty', `${dir} already holds a database; restore into an empty data dir, or pass --force to move it aside`);
    movedAside = `${dir}.before-restore-${backupStamp(now)}`;
    await rename(dir, movedAside);
  }
  await loadPgliteDataDir(dir, new Blob([await readFile(tarball)]));
  const db = await openPglite(dir);
  return movedAside ? { db, movedAside } : { db };
}
