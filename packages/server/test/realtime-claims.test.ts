import { createTestDatabase, type TestDatabase } from '@hallpass/db/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cachedClaimValues, subscriberClaims } from '../src/realtime/realtime.claims.ts';
import { checkVisible, type VisibilityCheck } from '../src/realtime/realtime.repository.ts';
import { runMigrations } from '../src/server.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await runMigrations(t.db);
});
afterAll(() => t?.drop());

const sub = '7b0c3f9e-2b8a-4c1e-9a55-3f1d2c4b5a69';
const tenant = '11111111-2222-4333-8444-555555555555';
const cases: Array<Record<string, unknown>> = [
  { role: 'authenticated', sub, email: 'a@example.com', app_metadata: { tenant_id: tenant } },
  { role: 'authenticated', sub: sub.toUpperCase(), email: '', app_metadata: { tenant_id: 'nope' } },
  { role: 'anon' },
  { role: 'authenticated', sub: 'not-a-uuid', email: null, app_metadata: [tenant] },
  { role: 'authenticated', sub: 42, email: 'ü@example.com', app_metadata: 'x' },
  { role: 'authenticated', sub, email: 'quote"and\\backslash@example.com', app_metadata: { tenant_id: 7 } },
  // Not cached: a number where a text claim is expected, text jsonb refuses.
  { role: 'authenticated', sub, email: 42 },
  { role: 'authenticated', sub, email: 'nul\u0000@example.com' },
];

it('prepares the claim cache values the SQL helpers would compute by parsing the same claims', async () => {
  for (const claims of cases) {
    const json = JSON.stringify(claims);
    const { rows } = await t.db.transaction((tx) =>
      tx.query<{ uid: string | null; email: string | null; role: string | null; tenant: string | null }>(
        `select set_config('request.jwt.claims', $1, true) is null as s, auth.uid()::text as uid, auth.email() as email,
                auth.role() as role, auth.tenant_id()::text as tenant`,
        [json],
      ),
    );
    const parsed = rows[0]!;
    const cached = subscriberClaims(claims, json).cached && cachedClaimValues(claims);
    if (cached === null) continue;
    const text = (v: string) => (v === '' ? null : v.slice(1));
    const uuid = (v: string) => (v === '' ? null : v.toLowerCase());
    expect({ uid: uuid(cached.uid), email: text(cached.email), role: text(cached.role), tenant: uuid(cached.tenant) }).toEqual({
      uid: parsed.uid,
      email: parsed.email,
      role: parsed.role,
      tenant: parsed.tenant,
    });
  }
  expect(cachedClaimValues({ role: 'authenticated', email: 42 })).toBeNull();
  expect(subscriberClaims(cases[7]!, JSON.stringify(cases[7])).cached).toBeNull();
});

it('decides with the prepared values as it does by parsing: the same answers for every subscriber', async () => {
  await t.db.exec(`
    create table public.claim_probe (id int primary key, owner uuid, mail text, who text, tenant uuid);
    alter table public.claim_probe enable row level security;
    alter table public.claim_probe force row level security;
    create policy claim_probe_read on public.claim_probe for select to anon, authenticated
      using (owner = (select auth.uid()) or mail = (select auth.email()) or who = (select auth.role()) or tenant = (select auth.tenant_id()));
    grant select on public.claim_probe to anon, authenticated;
    insert into public.claim_probe values
      (1, '${sub}', null, null, null), (2, null, 'a@example.com', null, null), (3, null, null, 'anon', null), (4, null, null, null, '${tenant}');
    select hallpass.realtime_publish('public.claim_probe');`);
  const checks = cases.flatMap((claims) => [1, 2, 3, 4].map((id) => ({ claims, id })));
  const args = [
    `{${checks.map(() => '"public.claim_probe"').join(',')}}`,
    checks.map((c) => JSON.stringify({ id: c.id })),
    checks.map((c) => String(c.claims.role)),
    checks.map((c) => JSON.stringify(c.claims)),
  ];
  const prepared = checks.map((c) => subscriberClaims(c.claims, JSON.stringify(c.claims)));
  const col = (f: (v: NonNullable<(typeof prepared)[number]['cached']>) => string) => `{${prepared.map((p) => (p.cached ? f(p.cached) : 'NULL')).join(',')}}`;
  // realtime_visible_set directly as well: realtime_visible would hide a failing set-based path
  // behind its fallback loop (same answers, only slower).
  const { rows } = await t.db.query<{ parsed: boolean[]; cached: boolean[]; set: boolean[]; loop: boolean[] }>(
    `select hallpass.realtime_visible($1::regclass[], $2::jsonb[], $3::text[], $4::text[], false) as parsed,
            hallpass.realtime_visible($1::regclass[], $2::jsonb[], $3::text[], $4::text[], false, $5::text[], $6::text[], $7::text[], $8::text[]) as cached,
            hallpass.realtime_visible($1::regclass[], $2::jsonb[], $3::text[], $4::text[], true) as loop,
            -- Last: it leaves the role switched (realtime_visible, its only caller, switches back).
            hallpass.realtime_visible_set('visible_' || 'public.claim_probe'::regclass::oid, $2::jsonb[], $3::text[], $4::text[],
                                          $5::text[], $6::text[], $7::text[], $8::text[]) as set`,
    [...args, col((v) => v.uid), col((v) => v.email), col((v) => v.role), col((v) => v.tenant)],
  );
  expect(rows[0]!.cached).toEqual(rows[0]!.parsed);
  expect(rows[0]!.set).toEqual(rows[0]!.parsed);
  expect(rows[0]!.loop).toEqual(rows[0]!.parsed);
  // The first subscriber sees rows 1, 2 and 4 (uid, email, tenant); anon sees row 3 only.
  expect(rows[0]!.parsed.slice(0, 4)).toEqual([true, true, false, true]);
  expect(rows[0]!.parsed.slice(8, 12)).toEqual([false, false, true, false]);
});

it('sends the claim arrays in binary to a PostgreSQL server and gets the same answers as from the text literals', async () => {
  // Runs after the test above (its claim_probe table). The binary arrays are node-postgres only
  // (a Buffer parameter goes in binary format); on PGlite the hub sends the literals.
  const checks: VisibilityCheck[] = cases.flatMap((claims) =>
    [1, 2, 3, 4].map((id) => ({
      table: '"public"."claim_probe"',
      row: { id },
      deleted: false,
      role: String(claims.role),
      claims: JSON.stringify(claims),
      subscriber: subscriberClaims(claims, JSON.stringify(claims)),
    })),
  );
  const literal = await checkVisible(t.db, checks, false);
  expect(literal.slice(0, 4)).toEqual([true, true, false, true]);
  expect(literal.slice(8, 12)).toEqual([false, false, true, false]);
  if (t.db.kind !== 'postgres') return;
  expect(await checkVisible(t.db, checks, false, { binaryArrays: true })).toEqual(literal);
});
