import { chmodSync, existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** What Hallpass keeps in its data dir: the embedded database, the generated secrets, backups. */
const ownEntries = ['data', 'secrets.json', 'backups'];

/**
 * Makes the data dir private to the server's user: the dir itself 0700 and, below it, every file
 * and folder Hallpass keeps there without group or world bits, whatever the umask. PGlite sets its
 * files' modes with explicit chmod calls (0666 for most of the files it unpacks), so a umask is not
 * enough: this runs after PGlite has opened and written, and at every start. Symlinks are not
 * followed, and other things an operator keeps in the dir are left alone.
 *
 * Returns the paths that were group- or world-accessible (now fixed), for the caller to report.
 */
export function tightenDataDir(dataDir: string): string[] {
  const loosened: string[] = [];
  if (!existsSync(dataDir)) return loosened;
  const tighten = (path: string, recurse: boolean) => {
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      return; // gone meanwhile (PGlite removes temporary files)
    }
    if (stat.isSymbolicLink()) return;
    if (stat.mode & 0o077) {
      chmodSync(path, stat.mode & 0o700);
      loosened.push(path);
    }
    if (recurse && stat.isDirectory()) for (const name of readdirSync(path)) tighten(join(path, name), true);
  };
  tighten(dataDir, false);
  for (const entry of ownEntries) tighten(join(dataDir, entry), true);
  return loosened;
}

