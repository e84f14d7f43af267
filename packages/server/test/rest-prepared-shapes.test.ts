import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { revokeSessionRow } from '../src/sessions/sessions.repository.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { seedUsers, type SeededUser } from './seed.ts';
import { supabaseClient } from './supabase.ts';

// Migration 0024: hallpass.rest_run prepares each statement shape once per connection. A cached plan
// must never carry one caller's rows, role or policy to the next; revocation stays immediate.

const defaultTenant = '00000000-0000-0000-0000-000000000000';
let server: TestServer;
let anonKey: string;
let alice: SeededUser;
let bob: SeededUser;
let carol: SeededUser;

beforeAll(async () => {
  server = await startTestServer();
  anonKey = await signApiKey(server.deps, 'anon');
  [alice, bob, carol] = (await seedUsers(server.deps, server.db, [
    { email: 'alice@shapes.test', tenantId: defaultTenant },
    { email: 'bob@shapes.test', tenantId: defaultTenant },
    { email: 'carol@shapes.test', tenantId: defaultTenant },
  ])) as [SeededUser, SeededUser, SeededUser];
  await server.db.exec(`
    create table public.shape_notes (id serial primary key, email text not null, body text);
    alter table public.shape_notes enable row level security;
    alter table public.shape_notes force row level security;
    create policy shape_notes_own on public.shape_notes for select using (email = (select auth.email()));
    grant select on public.shape_notes to anon, authenticated;
    insert into public.shape_notes (email, body) values ('alice@shapes.test', 'a'), ('bob@shapes.test', 'b'), ('carol@shapes.test', 'c');
    notify pgrst, 'reload schema';
  `);
});
afterAll(() => server?.stop());

/** The same shape every time: one select, one order; only the caller differs. */
const readNotes = (token?: string) => supabaseClient(server.url, anonKey, token).from('shape_notes').select('email, body').order('id');

describe('statement shapes prepared per connection (0024)', () => {
  it('answers the same shape for alternating callers with each caller’s own rows, and none for anon', async () => {
    for (let round = 0; round < 12; round++) {
      expect((await readNotes(alice.token)).data).toEqual([{ email: 'alice@shapes.test', body: 'a' }]);
      expect((await readNotes(bob.token)).data).toEqual([{ email: 'bob@shapes.test', body: 'b' }]);
      const anon = await readNotes();
      expect(anon.error).toBeNull();
      expect(anon.data).toEqual([]);
    }
  });

  it('follows a policy changed after the shape was prepared', async () => {
    for (let i = 0; i < 8; i++) expect((await readNotes(alice.token)).data).toHaveLength(1);
    await server.db.exec(`
      drop policy shape_notes_own on public.shape_notes;
      create policy shape_notes_all on public.shape_notes for select to authenticated using (true);
    `);
    expect((await readNotes(alice.token)).data).toHaveLength(3);
    await server.db.exec(`
      drop policy shape_notes_all on public.shape_notes;
      create policy shape_notes_own on public.shape_notes for select using (email = (select auth.email()));
    `);
    expect((await readNotes(alice.token)).data).toEqual([{ email: 'alice@shapes.test', body: 'a' }]);
  });

  it('refuses a revoked session at once, with its shape already prepared', async () => {
    for (let i = 0; i < 8; i++) expect((await readNotes(carol.token)).status).toBe(200);
    await revokeSessionRow(server.db, carol.claims.session_id, 'logout', new Date());
    const after = await readNotes(carol.token);
    expect(after.status).toBe(401);
    expect(after.data).toBeNull();
  });

  it('answers a shape again after tx=rollback left it prepared but unrecorded', async () => {
    const path = `/rest/v1/shape_notes?select=body&email=eq.${encodeURIComponent(alice.email)}`;
    const headers = { apikey: anonKey, authorization: `Bearer ${alice.token}` };
    for (let i = 0; i < 3; i++) {
      const rolled = await fetch(`${server.url}${path}`, { headers: { ...headers, prefer: 'tx=rollback' } });
      expect(rolled.status).toBe(200);
      expect(await rolled.json()).toEqual([{ body: 'a' }]);
    }
    const plain = await fetch(`${server.url}${path}`, { headers });
    expect(await plain.json()).toEqual([{ body: 'a' }]);
  });

  it('keeps at most 200 shapes prepared on a connection', async () => {
    const prepared = await server.db.transaction(async (tx) => {
      for (let i = 0; i < 230; i++) {
        const { rows } = await tx.query<{ live: boolean; body: string }>(
          `select live, body from hallpass.rest_run('service_role', '{"role":"service_role"}', null, null, now(),
                  $1, array['x'], null, null, false, null, false, null)`,
          [`select 1, $1[1] || '${i}', null::int`],
        );
        expect(rows[0]).toEqual({ live: true, body: `x${i}` });
        // rest_run switched this transaction's role; the next call starts as the server's user again.
        await tx.query('reset role');
      }
      const { rows } = await tx.query<{ n: number }>(`select count(*)::int as n from pg_prepared_statements where name like 'hallpass\\_rest\\_%'`);
      return rows[0]!.n;
    });
    expect(prepared).toBeGreaterThan(0);
    expect(prepared).toBeLessThanOrEqual(200);
  });
});
