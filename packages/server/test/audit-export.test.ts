import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportAuditLog } from '../src/backup/audit-export.ts';
import { loadConfig } from '../src/config/config.ts';
import { runMigrations } from '../src/server.ts';
import { manualClock } from './harness.ts';

let t: TestDatabase;
let dir: string;

beforeAll(async () => {
  t = await createTestDatabase();
  await runMigrations(t.db);
  dir = await mkdtemp(join(tmpdir(), 'hallpass-audit-'));
  // Entries as the trigger writes them, at chosen times: two on 1 January, one on 3 January.
  await t.db.query(
    `insert into public.audit_log (table_name, op, subject_email, new_row, actor_role, at)
     select 'profiles', 'UPDATE', e, '{}'::jsonb, 'service_role', a from unnest($1::text[], $2::timestamptz[]) as x(e, a)`,
    [
      ['a@example.com', 'b@example.com', 'c@example.com'],
      ['2026-01-01T10:00:00Z', '2026-01-01T23:59:59Z', '2026-01-03T01:00:00Z'],
    ],
  );
}, 120_000);
afterAll(async () => {
  await t?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('audit log export', () => {
  it('writes one JSON-lines file per closed UTC day, once, and waits for the current day to end', async () => {
    const config = loadConfig({ HALLPASS_DATA_DIR: dir, AUDIT_EXPORT_DIR: join(dir, 'audit') });
    const clock = manualClock(new Date('2026-01-03T00:10:00Z'));
    const deps = { config, db: t.db, clock };

    // Ten minutes into 3 January: 1 January is exported; 2 January is still within the grace period.
    expect(await exportAuditLog(deps)).toEqual(['audit-2026-01-01.jsonl']);
    const first = join(dir, 'audit', 'audit-2026-01-01.jsonl');
    const lines = (await readFile(first, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.subject_email, l.at])).toEqual([
      ['a@example.com', '2026-01-01T10:00:00.000000Z'],
      ['b@example.com', '2026-01-01T23:59:59.000000Z'],
    ]);
    const written = (await stat(first)).mtimeMs;

    // A day later: 2 January (empty) and 3 January follow; 1 January is not written again.
    clock.advance(86_400 + 600);
    expect(await exportAuditLog(deps)).toEqual(['audit-2026-01-02.jsonl', 'audit-2026-01-03.jsonl']);
    expect(await readFile(join(dir, 'audit', 'audit-2026-01-02.jsonl'), 'utf8')).toBe('');
    expect((await stat(first)).mtimeMs).toBe(written);
    expect(await exportAuditLog(deps)).toEqual([]);
    expect((await readdir(join(dir, 'audit'))).sort()).toEqual(['audit-2026-01-01.jsonl', 'audit-2026-01-02.jsonl', 'audit-2026-01-03.jsonl']);
  });
});
