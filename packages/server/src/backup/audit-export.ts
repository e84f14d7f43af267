import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { asService } from '@hallpass/db';
import { firstAuditTime, readAuditEntries } from '../profiles/audit.repository.ts';
import { writeFileAtomic } from './backup.files.ts';
import type { BackupDeps, Progress } from './backup.service.ts';

const dayMs = 86_400_000;
/**
 * A day is exported once it has been over this long: an audit row's time is its transaction's
 * start, so a transaction open across midnight still adds to the day that ended.
 */
export const auditDayGraceMs = 15 * 60_000;
const fileName = /^audit-(\d{4}-\d{2}-\d{2})\.jsonl$/;

const dayStart = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
const dayName = (d: Date) => d.toISOString().slice(0, 10);

/**
 * Exports the audit log as one JSON-lines file per closed UTC day, `audit-YYYY-MM-DD.jsonl` in the
 * audit export dir. Append-only: each day is written once, atomically, after it closed (plus a
 * grace period), and never rewritten; the current day waits for its end. Runs from the day after
 * the newest file (or the first entry's day), so an interrupted run picks up where it stopped.
 * @returns the files written.
 */
export async function exportAuditLog(deps: BackupDeps, progress: Progress = () => {}): Promise<string[]> {
  const dir = deps.config.backup.auditDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const done = (await readdir(dir))
    .map((n) => fileName.exec(n)?.[1])
    .filter((d): d is string => !!d)
    .sort();
  const lastDone = done.at(-1);
  let day: Date;
  if (lastDone) day = new Date(Date.parse(`${lastDone}T00:00:00Z`) + dayMs);
  else {
    const first = await asService(deps.db, firstAuditTime);
    if (!first) return [];
    day = dayStart(first);
  }
  const closedBefore = dayStart(new Date(deps.clock.now().getTime() - auditDayGraceMs));
  const written: string[] = [];
  for (; day < closedBefore; day = new Date(day.getTime() + dayMs)) {
    const next = new Date(day.getTime() + dayMs);
    const entries = await asService(deps.db, (tx) => readAuditEntries(tx, day, next));
    const name = `audit-${dayName(day)}.jsonl`;
    await writeFileAtomic(join(dir, name), entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    progress(`${name}: ${entries.length} entries`);
    written.push(name);
  }
  return written;
}
