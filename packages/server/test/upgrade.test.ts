import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrationChecksum, migrationStatus, type Db } from '@hallpass/db';
import { afterAll, describe, expect, it } from 'vitest';
import { cookieNames } from '../src/http/cookies.ts';
import { loadAllMigrations } from '../src/server.ts';
import { signAccessToken } from '../src/sessions/sessions.service.ts';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

// The oldest migration set a release must still upgrade (see fixtures/migrations-0013/README.md).
const fixtures = fileURLToPath(new URL('./fixtures/migrations-0013', import.meta.url));
const exampleMigrations = fileURLToPath(new URL('../../../examples/holiday-sale/migrations', import.meta.url));

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The database as the release with migrations 0001-0013 left it, made the way its runner made it. */
async function buildOldestSupported(db: Db): Promise<void> {
  await db.exec(`create schema if not exists hallpass;
    create table hallpass.schema_migrations (
      version integer primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())`);
  const set = JSON.parse(readFileSync(join(fixtures, 'set.json'), 'utf8')) as Record<'hallpass' | 'app', Record<string, string>>;
  for (const files of [set.hallpass, set.app]) {
    for (const [path, checksum] of Object.entries(files)) {
      const sql = readFileSync(join(repoRoot, path), 'utf8');
      const name = basename(path);
      if (migrationChecksum(sql) !== checksum) throw new Error(`${path} is not the file of the oldest supported set: it was edited`);
      await db.transaction(async (tx) => {
        await tx.exec(sql);
        await tx.query('insert into hallpass.schema_migrations (version, name, checksum) values ($1, $2, $3)', [
          Number(name.slice(0, 4)),
          name,
          migrationChecksum(sql),
        ]);
      });
    }
  }
  await db.exec(readFileSync(join(fixtures, 'seed.sql'), 'utf8'));
}

let server: TestServer;
afterAll(() => server?.stop());

describe('upgrade from the oldest supported migration set', () => {
  it('migrates a database with profiles, sessions, outbox and audit rows to head; the data stays and sign-in works', async () => {
    server = await startTestServer({ env: { APP_MIGRATIONS_DIR: exampleMigrations }, prepare: buildOldestSupported });
    const { db } = server;

    const status = await migrationStatus(db, loadAllMigrations(exampleMigrations));
    expect(status).toEqual({ pending: [], changed: [], unknown: [] });
    const app = await db.query(`select version from hallpass.schema_migrations where source = 'app'`);
    expect(app.rows).toContainEqual({ version: 20 });

    const { rows: profiles } = await db.query<{ id: string; email: string; tenant_id: string; name: string; metadata: unknown }>(
      `select id, email, tenant_id, name, metadata from public.profiles where email = 'upgrade@example.com'`,
    );
    expect(profiles).toHaveLength(1);
    const profile = profiles[0]!;
    expect(profile.name).toBe('Before Upgrade');
    expect(profile.metadata).toEqual({ tier: 'gold' });
    const audit = await db.query<{ op: string; actor_role: string }>(
      `select op, actor_role from public.audit_log where subject_email = 'upgrade@example.com' order by id`,
    );
    expect(audit.rows).toEqual([
      { op: 'INSERT', actor_role: 'service_role' },
      { op: 'UPDATE', actor_role: 'authenticated' },
    ]);
    const outbox = await db.query(`select status from hallpass.mail_outbox where to_email = 'upgrade@example.com'`);
    expect(outbox.rows).toEqual([{ status: 'sent' }]);
    const tokens = await db.query(`select count(*)::int as n from hallpass.refresh_tokens where session_id = '5e5510a0-0000-4000-8000-000000000013'`);
    expect(tokens.rows).toEqual([{ n: 2 }]);

    // The session made before the upgrade still authenticates.
    const { rows: sessions } = await db.query<{ id: string; amr: Array<{ method: 'otp'; timestamp: number }> }>(
      `select id, amr from hallpass.sessions where id = '5e5510a0-0000-4000-8000-000000000013'`,
    );
    const { token } = await signAccessToken(server.deps, profile, sessions[0]!);
    const browser = server.browser();
    browser.cookies.set(cookieNames(server.deps.config).access, token);
    const session = await browser.get('/api/auth/session');
    expect(session.status).toBe(200);
    expect(session.body.user.id).toBe(profile.id);

    // Sign-in works for the old user (same profile) and for a new one.
    const again = await signInWithCode(server, server.browser(), 'upgrade@example.com');
    expect(again.user.id).toBe(profile.id);
    const fresh = await signInWithCode(server, server.browser(), uniqueEmail('after-upgrade'));
    expect(fresh.user.email).toMatch(/^after-upgrade-/);
  }, 300_000);
});
