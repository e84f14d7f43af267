import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openDb, DataDirInUseError } from '@hallpass/db';
import { testBackend } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/config.ts';
import { systemClock } from '../src/deps.ts';
import { restoreBackup, takeBackup, type TakenBackup } from '../src/backup/backup.service.ts';
import { verifyBackup } from '../src/backup/backup.verify.ts';
import { signInWithCode, startTestServer, TestBrowser, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
let config: Readonly<Config>;
let backup: TakenBackup;
let alice: TestBrowser;
let aliceId: string;
const bob = uniqueEmail('bob');

beforeAll(async () => {
  server = await startTestServer();
  // The server's own config, pointing at its test database on the postgres backend.
  config = { ...server.deps.config, databaseUrl: server.databaseUrl };
  alice = server.browser();
  aliceId = (await signInWithCode(server, alice, uniqueEmail('alice'))).user.id;
  expect((await alice.patch('/api/profile', { name: 'Before the backup' })).status).toBe(200);
  backup = await takeBackup({ config, db: server.db, clock: systemClock });
}, 300_000);
afterAll(() => server?.stop());

const profileName = async (id: string) =>
  (await server.db.query<{ name: string | null }>('select name from public.profiles where id = $1', [id])).rows[0]?.name;

describe('backup and restore', () => {
  it('writes the dump, a manifest with row counts and a .sha256 into the backup dir', async () => {
    const names = await readdir(config.backup.dir);
    const base = basename(backup.files.base);
    expect(names.filter((n) => n.startsWith(base)).sort()).toEqual(
      [basename(backup.files.payload), `${base}.manifest.json`, `${base}.sha256`].sort(),
    );
    expect(backup.manifest.backend).toBe(testBackend());
    expect(backup.manifest.serverVersion).toMatch(/^1[5-9]/);
    expect(backup.manifest.tables['public.profiles']!.rows).toBe(1);
    expect(backup.manifest.tables['hallpass.sessions']!.rows).toBe(1);
    expect(backup.manifest.migrations.some((m) => m.startsWith('hallpass 1 0001_roles_and_claims.sql'))).toBe(true);
  });

  it.runIf(testBackend() === 'pglite')('refuses to open the embedded data dir a running server holds', async () => {
    await expect(openDb({ dataDir: server.dataDir })).rejects.toBeInstanceOf(DataDirInUseError);
  });

  it('refuses a truncated and an altered backup file with a clear error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hallpass-bad-backup-'));
    try {
      const copy = async (name: string) => {
        const d = join(dir, name);
        await mkdir(d);
        for (const f of [backup.files.payload, backup.files.manifest, backup.files.checksums]) await copyFile(f, join(d, basename(f)));
        return join(d, basename(backup.files.payload));
      };
      const truncated = await copy('truncated');
      await truncate(truncated, backup.manifest.bytes - 100);
      await expect(restoreBackup(config, truncated)).rejects.toMatchObject({ code: 'backup_invalid', message: expect.stringMatching(/truncated/) });

      const altered = await copy('altered');
      const bytes = await readFile(altered);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = bytes[middle]! ^ 0xff;
      await writeFile(altered, bytes);
      await expect(verifyBackup(config, altered)).rejects.toMatchObject({ code: 'backup_invalid', message: expect.stringMatching(/SHA-256/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('verify-backup restores the newest backup into a scratch copy, compares it and signs a user in there', async () => {
    const verified = await verifyBackup(config, undefined);
    expect(verified.file).toBe(backup.files.payload);
    expect(verified.migrated).toEqual([]);
  }, 120_000);

  it('restore brings the changed rows back, refuses a non-empty target without --force, and keeps sessions issued before the backup', async () => {
    expect((await alice.patch('/api/profile', { name: 'After the backup' })).status).toBe(200);
    await signInWithCode(server, server.browser(), bob);
    expect(await profileName(aliceId)).toBe('After the backup');

    server = await server.restart(undefined, async () => {
      await expect(restoreBackup(config, backup.files.payload)).rejects.toMatchObject({ code: 'target_not_empty' });
      await restoreBackup(config, backup.files.payload, { force: true });
    });

    expect(await profileName(aliceId)).toBe('Before the backup');
    const { rows } = await server.db.query('select 1 from public.profiles where email = $1', [bob]);
    expect(rows).toEqual([]);
    // Alice's cookies were issued before the backup: the access token and the refresh token work.
    const before = alice;
    alice = new TestBrowser(server.url, before.origin);
    for (const [k, v] of before.cookies) alice.cookies.set(k, v);
    const session = await alice.get('/api/auth/session');
    expect(session.status).toBe(200);
    expect(session.body.user.id).toBe(aliceId);
    expect((await alice.post('/api/auth/refresh')).status).toBe(200);
    expect((await alice.get('/api/profile')).body.profile.name).toBe('Before the backup');
  }, 300_000);
});
