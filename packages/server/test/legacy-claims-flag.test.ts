import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { seedUsers, type SeededUser } from './seed.ts';
import { supabaseClient } from './supabase.ts';

// Migration 0026: the legacy per-claim settings (request.jwt.claim.<name>, jwt.claims.<name>) are set
// only while a policy, function, view, default or check reads them, and an event trigger keeps that
// answer (hallpass.legacy_claims_needed()) current at the end of every DDL command. These tests
// prove the answer follows the DDL at once, in both directions, whoever runs it, and that a legacy
// policy written while the server runs is served by the very next request.

const defaultTenant = '00000000-0000-0000-0000-000000000000';
let server: TestServer;
let anonKey: string;
let alice: SeededUser;

const needed = async () => (await server.db.query<{ v: boolean }>('select hallpass.legacy_claims_needed() as v')).rows[0]!.v;

beforeAll(async () => {
  server = await startTestServer();
  anonKey = await signApiKey(server.deps, 'anon');
  [alice] = (await seedUsers(server.deps, server.db, [{ email: 'alice@flag.test', tenantId: defaultTenant }])) as [SeededUser];
  await server.db.exec(`
    create table public.flag_notes (id serial primary key, email text not null, body text);
    alter table public.flag_notes enable row level security;
    grant select on public.flag_notes to anon, authenticated;
    insert into public.flag_notes (email, body) values ('alice@flag.test', 'a'), ('bob@flag.test', 'b');
    notify pgrst, 'reload schema';
  `);
});
afterAll(() => server?.stop());

describe('legacy claim settings only while something reads them (0026)', () => {
  it('sets only request.jwt.claims and the role while nothing reads the legacy names', async () => {
    expect(await needed()).toBe(false);
    const row = await server.db.transaction(async (tx) => {
      await tx.query('select hallpass.set_request_claims($1, $2)', ['authenticated', JSON.stringify(alice.claims)]);
      const { rows } = await tx.query<{ email: string | null; claims: string; who: string }>(
        `select nullif(current_setting('request.jwt.claim.email', true), '') as email, current_setting('request.jwt.claims') as claims, current_user as who`,
      );
      return rows[0]!;
    });
    expect(row).toEqual({ email: null, claims: JSON.stringify(alice.claims), who: 'authenticated' });
  });

  it('serves a legacy policy created while the server runs from the very next data API request, and forgets it when dropped', async () => {
    const asAlice = supabaseClient(server.url, anonKey, alice.token);
    await server.db.exec(`create policy "own notes" on public.flag_notes for select using (email = current_setting('request.jwt.claim.email', true))`);
    expect(await needed()).toBe(true);
    const { data, error } = await asAlice.from('flag_notes').select('email, body');
    expect(error).toBeNull();
    expect(data).toEqual([{ email: 'alice@flag.test', body: 'a' }]);

    await server.db.exec(`drop policy "own notes" on public.flag_notes`);
    expect(await needed()).toBe(false);
    // No policy left: RLS denies every row.
    expect((await asAlice.from('flag_notes').select('email')).data).toEqual([]);
  });

  it('leaves the answer as it was when the DDL rolls back', async () => {
    await expect(
      server.db.transaction(async (tx) => {
        await tx.query(`create policy "rolled back" on public.flag_notes for select using (email = current_setting('jwt.claims.email', true))`);
        expect((await tx.query<{ v: boolean }>('select hallpass.legacy_claims_needed() as v')).rows[0]!.v).toBe(true);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await needed()).toBe(false);
  });

  it("follows an app role's DDL too, which may not replace Hallpass's functions itself", async () => {
    // Roles are the whole cluster's on a PostgreSQL server: a name of this run's own, dropped after.
    const role = `flag_app_${randomBytes(4).toString('hex')}`;
    await server.db.exec(`
      create role ${role} nologin;
      grant usage, create on schema public to ${role};
      create table public.flag_app_notes (email text);
      alter table public.flag_app_notes owner to ${role};
    `);
    try {
      await server.db.transaction(async (tx) => {
        await tx.query(`set local role ${role}`);
        await tx.query(`create policy "app notes" on public.flag_app_notes using (email = current_setting('request.jwt.claim.email', true))`);
      });
      expect(await needed()).toBe(true);
      await server.db.exec('drop table public.flag_app_notes');
      expect(await needed()).toBe(false);
    } finally {
      await server.db.exec(`drop table if exists public.flag_app_notes; revoke all on schema public from ${role}; drop role ${role}`);
    }
  });

  it.each([
    ['a function', `create function public.flag_email() returns text language sql stable as $$ select current_setting('request.jwt.claim.email', true) $$`, 'drop function public.flag_email()'],
    ['a view', `create view public.flag_view as select * from public.flag_notes where email = current_setting('jwt.claims.email', true)`, 'drop view public.flag_view'],
    ['a column default', `alter table public.flag_notes alter column body set default current_setting('request.jwt.claim.sub', true)`, 'alter table public.flag_notes alter column body drop default'],
  ])('counts %s that reads them', async (_, create, drop) => {
    await server.db.exec(create);
    expect(await needed()).toBe(true);
    await server.db.exec(drop);
    expect(await needed()).toBe(false);
  });
});
