import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { seedUsers, type SeededUser } from './seed.ts';
import { supabaseClient } from './supabase.ts';

// Policies written for older PostgREST (as the Scalekit + Supabase guide writes them) read one
// setting per claim: current_setting('request.jwt.claim.email') and current_setting('jwt.claims.email').
// Hallpass sets both besides request.jwt.claims (migration 0014), so such SQL pastes unchanged.

const defaultTenant = '00000000-0000-0000-0000-000000000000';
let server: TestServer;
let anonKey: string;
let alice: SeededUser;
let bob: SeededUser;

beforeAll(async () => {
  server = await startTestServer();
  anonKey = await signApiKey(server.deps, 'anon');
  [alice, bob] = (await seedUsers(server.deps, server.db, [
    { email: 'alice@legacy.test', tenantId: defaultTenant },
    { email: 'bob@legacy.test', tenantId: defaultTenant },
  ])) as [SeededUser, SeededUser];
  // Two tables, one per legacy style, with the policies written exactly as the guide writes them.
  await server.db.exec(`
    create table public.notes_claim (id serial primary key, email text not null, body text);
    create table public.notes_claims (id serial primary key, email text not null, body text);
    alter table public.notes_claim enable row level security;
    alter table public.notes_claim force row level security;
    alter table public.notes_claims enable row level security;
    alter table public.notes_claims force row level security;
    create policy "Users can view own notes" on public.notes_claim
      for select using (email = current_setting('request.jwt.claim.email'));
    create policy "Users can view own notes" on public.notes_claims
      for select using (email = current_setting('jwt.claims.email', true));
    grant select on public.notes_claim, public.notes_claims to anon, authenticated;
    insert into public.notes_claim (email, body) values ('alice@legacy.test', 'a'), ('bob@legacy.test', 'b');
    insert into public.notes_claims (email, body) values ('alice@legacy.test', 'a'), ('bob@legacy.test', 'b');
    notify pgrst, 'reload schema';
  `);
});
afterAll(() => server?.stop());

describe('legacy claim settings', () => {
  it.each(['notes_claim', 'notes_claims'])('a user reads only their own rows of %s through the data API', async (table) => {
    const asAlice = supabaseClient(server.url, anonKey, alice.token);
    const { data, error } = await asAlice.from(table).select('email, body');
    expect(error).toBeNull();
    expect(data).toEqual([{ email: 'alice@legacy.test', body: 'a' }]);
    const asBob = supabaseClient(server.url, anonKey, bob.token);
    expect((await asBob.from(table).select('email')).data).toEqual([{ email: 'bob@legacy.test' }]);
  });

  it.each(['notes_claim', 'notes_claims'])('anon reads no rows of %s and gets no error', async (table) => {
    const anon = supabaseClient(server.url, anonKey);
    const { data, error } = await anon.from(table).select('email');
    expect(error).toBeNull();
    expect(data).toEqual([]);
  });

  it('sets every top-level claim as request.jwt.claim.<name>', async () => {
    const row = await server.db.transaction(async (tx) => {
      await tx.query('select hallpass.set_request_claims($1, $2)', ['authenticated', JSON.stringify(alice.claims)]);
      const { rows } = await tx.query<Record<string, string>>(
        `select current_setting('request.jwt.claim.sub') as sub, current_setting('request.jwt.claim.email') as email,
                current_setting('request.jwt.claim.role') as role, current_setting('request.jwt.claim.session_id') as sid,
                current_setting('jwt.claims.sub') as legacy_sub, current_setting('jwt.claims.role') as legacy_role`,
      );
      return rows[0]!;
    });
    expect(row).toEqual({
      sub: alice.id,
      email: 'alice@legacy.test',
      role: 'authenticated',
      sid: alice.claims.session_id,
      legacy_sub: alice.id,
      legacy_role: 'authenticated',
    });
  });

  it("never carries one caller's claims into the next caller's switch in the same transaction", async () => {
    const row = await server.db.transaction(async (tx) => {
      await tx.query('select hallpass.set_request_claims($1, $2)', ['authenticated', JSON.stringify({ ...alice.claims, plan: 'gold' })]);
      await tx.query(`select set_config('role', 'none', true)`);
      await tx.query('select hallpass.set_request_claims($1, $2)', ['anon', JSON.stringify({ role: 'anon' })]);
      const { rows } = await tx.query<Record<string, string>>(
        `select current_setting('request.jwt.claim.email') as email, current_setting('request.jwt.claim.plan') as plan,
                current_setting('request.jwt.claim.session_id') as sid, current_setting('jwt.claims.email') as legacy_email,
                current_user as who`,
      );
      return rows[0]!;
    });
    expect(row).toEqual({ email: '', plan: '', sid: '', legacy_email: '', who: 'anon' });
  });

  it('refuses an unknown role', async () => {
    await expect(
      server.db.transaction((tx) => tx.query('select hallpass.set_request_claims($1, $2)', ['postgres', '{}'])),
    ).rejects.toMatchObject({ code: '22023' });
  });
});
