import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgres, type Db } from '@hallpass/db';
import { testBackend } from '@hallpass/db/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackupScheduler, type ScheduledBackupOutcome } from '../src/backup/backup.scheduler.ts';
import type { Config } from '../src/config/config.ts';
import { startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
let config: Readonly<Config>;
const extraPools: Db[] = [];
const scratch: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  config = { ...server.deps.config, databaseUrl: server.databaseUrl };
}, 300_000);
afterAll(async () => {
  for (const db of extraPools) await db.close();
  await server?.stop();
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

/** A logger whose error lines the test can read. */
function capturingLog() {
  const lines: Array<{ level: number; msg: string; stage?: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, errors: () => lines.filter((l) => l.level >= 50) };
}

describe('scheduled backups', () => {
  it('three instances firing for one scheduled time make one backup, verified, and record it', async () => {
    const instances =
      testBackend() === 'postgres'
        ? [server.db, ...(await Promise.all([1, 2].map(() => openPostgres({ connectionString: server.databaseUrl!, max: 2 }))))]
        : [server.db, server.db, server.db];
    extraPools.push(...instances.filter((db) => db !== server.db));
    const seen: ScheduledBackupOutcome[] = [];
    const schedulers = instances.map((db) =>
      startBackupScheduler({ ...server.deps, config, db, log: pino({ level: 'silent' }) }, { onRun: (o) => void seen.push(o) }),
    );
    const slot = new Date('2026-11-28T03:00:00Z');
    const outcomes = await Promise.all(schedulers.map((s) => s.runSlot(slot)));
    expect(outcomes.map((o) => o.status).sort()).toEqual(['ok', 'skipped', 'skipped']);
    expect(seen).toHaveLength(3);
    const backups = (await readdir(config.backup.dir)).filter((n) => n.endsWith('.sha256'));
    expect(backups).toHaveLength(1);
    const { rows } = await server.db.query('select status from hallpass.backup_runs where slot = $1', [slot]);
    expect(rows).toEqual([{ status: 'ok' }]);
    // The same time again (an instance whose clock ran late) is not taken twice.
    expect((await schedulers[0]!.runSlot(slot)).status).toBe('skipped');
    for (const s of schedulers) await s.stop();
  }, 240_000);

  it('reports a failed backup as an error log line and through the hook, never silently', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hallpass-bad-dir-'));
    scratch.push(dir);
    const notADir = join(dir, 'file');
    await writeFile(notADir, 'not a directory');
    const { log, errors } = capturingLog();
    const seen: ScheduledBackupOutcome[] = [];
    const scheduler = startBackupScheduler(
      { ...server.deps, config: { ...config, backup: { ...config.backup, dir: join(notADir, 'backups') } }, log },
      { onRun: (o) => void seen.push(o) },
    );
    const outcome = await scheduler.runSlot(new Date('2026-11-28T04:00:00Z'));
    expect(outcome).toMatchObject({ status: 'failed', stage: 'backup' });
    expect(seen).toEqual([outcome]);
    expect(errors()).toEqual([expect.objectContaining({ stage: 'backup', msg: 'scheduled backup failed at backup' })]);
    await scheduler.stop();
  });

  it.runIf(testBackend() === 'postgres')('runs on BACKUP_SCHEDULE by itself, naming the run by its scheduled second', async () => {
    let resolveRun: (o: ScheduledBackupOutcome) => void;
    const ran = new Promise<ScheduledBackupOutcome>((r) => (resolveRun = r));
    const scheduler = startBackupScheduler(
      { ...server.deps, config: { ...config, backup: { ...config.backup, schedule: '* * * * * *' } }, log: pino({ level: 'silent' }) },
      { onRun: (o) => resolveRun(o) },
    );
    const outcome = await ran;
    await scheduler.stop();
    expect(outcome.status).toBe('ok');
    expect(outcome.slot.getUTCMilliseconds()).toBe(0);
  }, 120_000);

  it.runIf(testBackend() === 'postgres')('refuses a pg_dump older than the server, saying what to install', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'hallpass-old-pgdump-'));
    scratch.push(bin);
    await writeFile(join(bin, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n');
    await chmod(join(bin, 'pg_dump'), 0o755);
    const scheduler = startBackupScheduler({
      ...server.deps,
      config: { ...config, backup: { ...config.backup, pgBinDir: bin } },
      log: pino({ level: 'silent' }),
    });
    const outcome = await scheduler.runSlot(new Date('2026-11-28T05:00:00Z'));
    expect(outcome, outcome.status === 'failed' ? outcome.error.stack : '').toMatchObject({ status: 'failed', stage: 'backup', error: { code: 'tool_too_old' } });
    if (outcome.status === 'failed') expect(outcome.error.message).toMatch(/pg_dump 9 is older than the PostgreSQL server \(15\): install postgresql-client-15/);
    await scheduler.stop();
  });
});
