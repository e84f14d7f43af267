import { basename } from 'node:path';
import type { Config } from '../config/config.ts';
import { listBackups, removeBackup, type BackupFiles } from './backup.files.ts';

/** When a backup was taken, from its name (`hallpass-20261128T090000Z`). */
export function backupTime(files: BackupFiles): Date {
  const s = /hallpass-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})?Z$/.exec(files.base)!;
  return new Date(Date.UTC(+s[1]!, +s[2]! - 1, +s[3]!, +s[4]!, +s[5]!, +s[6]!, +(s[7] ?? 0)));
}

/** Monday of the ISO week, as YYYY-MM-DD (UTC). */
function weekOf(d: Date): string {
  const monday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7)));
  return monday.toISOString().slice(0, 10);
}

/**
 * Which backups the retention settings keep: the newest of each of the last `keepDaily` days that
 * have a backup, the newest of each of the last `keepWeekly` ISO weeks, and always the newest one.
 */
export function backupsToKeep(backups: readonly BackupFiles[], keepDaily: number, keepWeekly: number): Set<string> {
  const newestFirst = [...backups].sort((a, b) => backupTime(b).getTime() - backupTime(a).getTime());
  const keep = new Set<string>();
  if (newestFirst[0]) keep.add(newestFirst[0].base);
  const pick = (bucket: (d: Date) => string, n: number) => {
    const seen = new Set<string>();
    for (const b of newestFirst) {
      const k = bucket(backupTime(b));
      if (seen.has(k)) continue;
      if (seen.size >= n) break;
      seen.add(k);
      keep.add(b.base);
    }
  };
  pick((d) => d.toISOString().slice(0, 10), keepDaily);
  pick(weekOf, keepWeekly);
  return keep;
}

/**
 * Removes the backups the retention settings no longer keep. Only complete backups are considered.
 * @returns the base names removed.
 */
export async function pruneBackups(settings: Pick<Config['backup'], 'dir' | 'keepDaily' | 'keepWeekly'>): Promise<string[]> {
  const all = await listBackups(settings.dir);
  const keep = backupsToKeep(all, settings.keepDaily, settings.keepWeekly);
  const removed: string[] = [];
  for (const b of all) {
    if (keep.has(b.base)) continue;
    await removeBackup(b);
    removed.push(basename(b.base));
  }
  return removed;
}
