import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/** The embedded data dir is open in another live process. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`the embedded database ${dataDir} is open in process ${pid} (a running Hallpass server?); PGlite allows one process per data dir`);
    this.name = 'DataDirInUseError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dataDir>.lock` for this process (the pid inside), or throws DataDirInUseError when a live
 * process holds it. A lock left by a process that died (kill -9) is taken over. Kept beside the
 * directory, not in it, so a copy of the directory never carries a lock.
 * @returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = `${dataDir}.lock`;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid && alive(pid)) throw new DataDirInUseError(dataDir, pid);
    rmSync(file, { force: true });
  }
}

/** The pid holding the data dir, or null when it is free. */
export function dataDirHolder(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(`${dataDir}.lock`, 'utf8').trim());
    return pid && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}
