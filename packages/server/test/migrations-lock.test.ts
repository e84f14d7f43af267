import { describe, expect, it } from 'vitest';
import { compareWithLock, currentChecksums, editedMigrationAdvice, readLock } from '../../../scripts/migrations-lock.ts';

describe('migrations.lock.json', () => {
  it('records every migration file with the checksum it has: none was edited after landing, none is unrecorded', () => {
    const diff = compareWithLock(readLock(), currentChecksums());
    const problems = [
      ...diff.changed.map((f) => `${f} changed after it was locked. ${editedMigrationAdvice}`),
      ...diff.missing.map((f) => `${f} is in migrations.lock.json but gone: landed migrations are never deleted.`),
      ...diff.added.map((f) => `${f} is not in migrations.lock.json: run \`npm run migrations:lock\` and commit the lock file.`),
    ];
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('tells an edited file apart from a new one', () => {
    const diff = compareWithLock({ 'a/0001_x.sql': 'aa', 'a/0002_y.sql': 'bb' }, { 'a/0001_x.sql': 'zz', 'a/0003_z.sql': 'cc' });
    expect(diff).toEqual({ changed: ['a/0001_x.sql'], missing: ['a/0002_y.sql'], added: ['a/0003_z.sql'] });
  });
});
