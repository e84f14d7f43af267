// `npm run migrations:lock`: records the SHA-256 of every migration file in migrations.lock.json.
// New files are added; a file already recorded whose bytes changed, or that disappeared, is refused:
// a migration on main never changes (databases have applied it), a change is a new migration.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMigrations } from '@hallpass/db';
import { migrationDirs } from '@hallpass/server';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const lockFile = join(repoRoot, 'migrations.lock.json');

interface LockFile {
  rule: string;
  files: Record<string, string>;
}

/** Every migration file of Hallpass and of the example apps: repo-relative path -> checksum. */
export function currentChecksums(): Record<string, string> {
  const examples = join(repoRoot, 'examples');
  const appDirs = readdirSync(examples)
    .map((e) => join(examples, e, 'migrations'))
    .filter((d) => {
      try {
        return readdirSync(d).length > 0;
      } catch {
        return false;
      }
    });
  const out: Record<string, string> = {};
  for (const dir of [...migrationDirs, ...appDirs]) {
    for (const m of loadMigrations([dir])) out[relative(repoRoot, join(dir, m.name))] = m.checksum;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function readLock(): Record<string, string> {
  return (JSON.parse(readFileSync(lockFile, 'utf8')) as LockFile).files;
}

export interface LockDiff {
  /** Recorded files whose bytes differ from the record: edited after landing. */
  changed: string[];
  /** Recorded files that are gone. */
  missing: string[];
  /** Files not recorded yet: run `npm run migrations:lock`. */
  added: string[];
}

export function compareWithLock(locked: Record<string, string>, current: Record<string, string>): LockDiff {
  return {
    changed: Object.keys(locked).filter((f) => f in current && current[f] !== locked[f]),
    missing: Object.keys(locked).filter((f) => !(f in current)),
    added: Object.keys(current).filter((f) => !(f in locked)),
  };
}

export const editedMigrationAdvice =
  'A migration that is on main never changes: databases have applied it and the runner refuses a changed file. ' +
  'Put the file back as it was (git checkout main -- <file>) and make the change in a new migration.';

function main(): void {
  const current = currentChecksums();
  let locked: Record<string, string> = {};
  try {
    locked = readLock();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const diff = compareWithLock(locked, current);
  if (diff.changed.length || diff.missing.length) {
    for (const f of diff.changed) console.error(`changed after it was locked: ${f}`);
    for (const f of diff.missing) console.error(`locked but missing: ${f}`);
    console.error(editedMigrationAdvice);
    process.exit(1);
  }
  const lock: LockFile = {
    rule: 'SHA-256 of every migration on main. Never edit a listed file: add a new migration, then run npm run migrations:lock.',
    files: { ...locked, ...current },
  };
  lock.files = Object.fromEntries(Object.entries(lock.files).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(diff.added.length ? `locked: ${diff.added.join(', ')}` : 'migrations.lock.json is up to date');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
