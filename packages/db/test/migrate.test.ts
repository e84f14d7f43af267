import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, coreMigrationsDir, loadMigrations, migrate, migrationStatus, openPostgres } from '../src/index.ts';
import { createTestDatabase, testBackend, type TestDatabase } from '../src/testing.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t?.drop());

function scratchDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hallpass-mig-'));
  for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
  return dir;
}

describe('migrations', () => {
  it('applies each file once, in number order, and records it', async () => {
    const dir = scratchDir({
      '0102_second.sql': 'insert into hallpass.m_test values (2);',
      '0101_first.sql': 'create table hallpass.m_test (n int);',
    });
    const core = loadMigrations([coreMigrationsDir]);
    const all = loadMigrations([coreMigrationsDir, dir]);
    expect(all.map((m) => m.version)).toEqual([...core.map((m) => m.version), 101, 102]);
    expect(await migrate(t.db, all)).toEqual([...core.map((m) => m.name), '0101_first.sql', '0102_second.sql']);
    expect(await migrate(t.db, all)).toEqual([]);
    const { rows } = await t.db.query<{ n: number }>('select n from hallpass.m_test');
    expect(rows).toEqual([{ n: 2 }]);
  });

  it('refuses a landed migration whose file changed', async () => {
    const dir = scratchDir({ '0101_first.sql': 'create table hallpass.m_test (n int, changed int);' });
    await expect(migrate(t.db, loadMigrations([coreMigrationsDir, dir]))).rejects.toThrow(/changed after it was applied/);
  });

  it('refuses two files with one number', () => {
    const a = scratchDir({ '0201_a.sql': 'select 1;' });
    const b = scratchDir({ '0201_b.sql': 'select 1;' });
    expect(() => loadMigrations([a, b])).toThrow(/two migrations numbered 0201/);
  });

  it('rolls back a failing migration whole', async () => {
    const dir = scratchDir({ '0301_half.sql': 'create table hallpass.half (n int); select 1/0;' });
    await expect(migrate(t.db, loadMigrations([coreMigrationsDir, dir]))).rejects.toThrow();
    const { rows } = await t.db.query(`select to_regclass('hallpass.half') as t`);
    expect(rows[0]).toEqual({ t: null });
  });

  it.runIf(testBackend() === 'postgres')('is safe when two instances migrate at once', async () => {
    const fresh = await createTestDatabase();
    try {
      const other = await openPostgres({ connectionString: fresh.url!, max: 2 });
      const dir = scratchDir({ '0101_once.sql': 'create table hallpass.once (n int); insert into hallpass.once values (1);' });
      const all = loadMigrations([coreMigrationsDir, dir]);
      const [a, b] = await Promise.all([migrate(fresh.db, all), migrate(other, all)]);
      expect([...a, ...b].sort()).toEqual(all.map((m) => m.name).sort());
      const { rows } = await fresh.db.query<{ n: number }>('select count(*)::int as n from hallpass.once');
      expect(rows[0]!.n).toBe(1);
      await other.close();
    } finally {
      await fresh.drop();
    }
  });
});

describe('claims helpers', () => {
  it('return null, never an error, for missing or malformed claims', async () => {
    for (const raw of ['', 'not json', '[1,2]', '"a string"', '{"sub":"not-a-uuid","app_metadata":{"tenant_id":5}}']) {
      const { rows } = await t.db.transaction(async (tx) => {
        await tx.query(`select set_config('request.jwt.claims', $1, true)`, [raw]);
        return tx.query('select auth.jwt() as jwt, auth.uid() as uid, auth.email() as email, auth.role() as role, auth.tenant_id() as tenant');
      });
      const r = rows[0] as Record<string, unknown>;
      expect(r.uid).toBeNull();
      expect(r.tenant).toBeNull();
      if (raw !== '{"sub":"not-a-uuid","app_metadata":{"tenant_id":5}}') expect(r.jwt).toBeNull();
    }
  });

  it('use the parsed-claims cache (0023) only for the exact claims text it was made from', async () => {
    const a = { sub: '7b0c3f9e-2b8a-4c1e-9a55-3f1d2c4b5a69', email: 'a@example.com', role: 'authenticated', app_metadata: { tenant_id: '11111111-2222-4333-8444-555555555555' } };
    const b = { sub: '0e6f4a9c-1d2b-4c3e-8f5a-6b7c8d9e0f1a', email: 'b@example.com', role: 'anon' };
    const read = 'select auth.uid()::text as uid, auth.email() as email, auth.role() as role, auth.tenant_id()::text as tenant';
    const { rows } = await t.db.transaction(async (tx) => {
      // A cache written for a, then the claims switched to b by someone else: b's values, not a's.
      await tx.query(
        `select set_config('hallpass.claims_for', $1, true), set_config('hallpass.claim_uid', $2, true),
                set_config('hallpass.claim_email', 'v' || $3, true), set_config('hallpass.claim_role', 'vauthenticated', true),
                set_config('hallpass.claim_tenant', $4, true), set_config('request.jwt.claims', $5, true)`,
        [JSON.stringify(a), a.sub, a.email, a.app_metadata.tenant_id, JSON.stringify(b)],
      );
      const other = (await tx.query(read)).rows[0];
      await tx.query(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify(a)]);
      const same = (await tx.query(read)).rows[0];
      return { rows: [other, same] };
    });
    expect(rows[0]).toEqual({ uid: b.sub, email: b.email, role: 'anon', tenant: null });
    expect(rows[1]).toEqual({ uid: a.sub, email: a.email, role: 'authenticated', tenant: a.app_metadata.tenant_id });
  });

  it('read the claims set by asUser', async () => {
    const sub = '7b0c3f9e-2b8a-4c1e-9a55-3f1d2c4b5a69';
    const { rows } = await asUser(t.db, { role: 'authenticated', sub, email: 'a@example.com' }, (tx) =>
      tx.query('select auth.uid() as uid, auth.email() as email, auth.role() as role, current_user as who'),
    );
    expect(rows[0]).toEqual({ uid: sub, email: 'a@example.com', role: 'authenticated', who: 'authenticated' });
  });
});

describe('namespaces', () => {
  it('numbers Hallpass and app migrations apart: both may use 0020', async () => {
    const fresh = await createTestDatabase();
    try {
      const core = scratchDir({ '0020_core_later.sql': 'create table hallpass.core_later (n int);' });
      const app = scratchDir({ '0020_app_first.sql': 'create table public.app_first (n int);' });
      const hallpass = loadMigrations([coreMigrationsDir, core]);
      const all = [...hallpass, ...loadMigrations([app], 'app')];
      expect(await migrate(fresh.db, all)).toEqual([...hallpass.map((m) => m.name), '0020_app_first.sql']);
      const { rows } = await fresh.db.query(`select source, version, name from hallpass.schema_migrations where version = 20 order by source`);
      expect(rows).toEqual([
        { source: 'app', version: 20, name: '0020_app_first.sql' },
        { source: 'hallpass', version: 20, name: '0020_core_later.sql' },
      ]);
    } finally {
      await fresh.drop();
    }
  }, 120_000);

  it('upgrades a table written before namespaces: app rows (0020 and up) keep their number and are not re-applied', async () => {
    const fresh = await createTestDatabase();
    try {
      const app = scratchDir({ '0020_offers.sql': 'create table public.offers_legacy (n int);' });
      const appMigrations = loadMigrations([app], 'app');
      const coreOnly = loadMigrations([coreMigrationsDir]);
      // What the runner before namespaces left: one numbering, version the only key.
      await fresh.db.exec(`create schema hallpass; create table hallpass.schema_migrations (
        version integer primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())`);
      await fresh.db.exec(coreOnly[0]!.sql + appMigrations[0]!.sql);
      for (const m of [coreOnly[0]!, appMigrations[0]!]) {
        await fresh.db.query('insert into hallpass.schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum]);
      }
      const core = scratchDir({ '0020_core_later.sql': 'create table hallpass.core_later (n int);' });
      const hallpass = loadMigrations([coreMigrationsDir, core]);
      const all = [...hallpass, ...appMigrations];
      // Everything of Hallpass's but the recorded 0001, in number order (0020_core_later among them).
      expect(await migrate(fresh.db, all)).toEqual(hallpass.slice(1).map((m) => m.name));
      const { rows } = await fresh.db.query(`select source, version from hallpass.schema_migrations where version in (1, 20) order by source, version`);
      expect(rows).toEqual([
        { source: 'app', version: 20 },
        { source: 'hallpass', version: 1 },
        { source: 'hallpass', version: 20 },
      ]);
      expect((await migrationStatus(fresh.db, all)).pending).toEqual([]);
    } finally {
      await fresh.drop();
    }
  }, 120_000);
});
