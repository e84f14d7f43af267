import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { asUser, type Claims, type Db } from '@hallpass/db';
import { createTestDatabase, type TestDatabase } from '@hallpass/db/testing';
import { runMigrations } from '@hallpass/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The example's own tables, under Postgres RLS, run as the roles the data API uses.
const exampleMigrations = fileURLToPath(new URL('../migrations', import.meta.url));
const tenant = '00000000-0000-0000-0000-000000000000';
const user = (email: string): Claims => ({
  role: 'authenticated',
  sub: randomUUID(),
  email,
  aud: 'authenticated',
  app_metadata: { tenant_id: tenant },
});
const anon: Claims = { role: 'anon' };

let t: TestDatabase;
let db: Db;

beforeAll(async () => {
  t = await createTestDatabase();
  db = t.db;
  await runMigrations(db, exampleMigrations);
});
afterAll(() => t.drop());

describe('holiday-sale offers under RLS', () => {
  it('shows visitors only public offers and signed-in users the members-only ones too', async () => {
    const visitor = await asUser(db, anon, (tx) => tx.query<{ audience: string }>('select audience from public.offers'));
    const member = await asUser(db, user('ada@example.com'), (tx) => tx.query<{ audience: string }>('select audience from public.offers'));
    expect(visitor.rows.length).toBeGreaterThan(0);
    expect(visitor.rows.every((r) => r.audience === 'everyone')).toBe(true);
    expect(member.rows.some((r) => r.audience === 'members')).toBe(true);
  });

  it('shows each user only the offers they redeemed themselves', async () => {
    const ada = user('ada-r@example.com');
    const bob = user('bob-r@example.com');
    const { rows: offers } = await asUser(db, ada, (tx) => tx.query<{ id: string }>('select id from public.offers order by id'));
    await asUser(db, ada, (tx) => tx.query('insert into public.redemptions (offer_id) values ($1)', [offers[0]!.id]));
    await asUser(db, bob, (tx) => tx.query('insert into public.redemptions (offer_id) values ($1)', [offers[1]!.id]));
    const mine = (c: Claims) => asUser(db, c, (tx) => tx.query<{ email: string; offer_id: string }>('select email, offer_id from public.redemptions'));
    expect((await mine(ada)).rows).toEqual([{ email: 'ada-r@example.com', offer_id: offers[0]!.id }]);
    expect((await mine(bob)).rows).toEqual([{ email: 'bob-r@example.com', offer_id: offers[1]!.id }]);
    const visitor = await asUser(db, anon, (tx) => tx.query('select 1 from public.redemptions')).catch((e: { code: string }) => e.code);
    expect(visitor).toBe('42501');
  });

  it('refuses a redemption written for someone else', async () => {
    const ada = user('ada-x@example.com');
    const err = await asUser(db, ada, (tx) =>
      tx.query(`insert into public.redemptions (offer_id, email) values (1, 'bob@example.com')`),
    ).catch((e: { code: string }) => e.code);
    // No column privilege on email: the owner comes from the session claim only.
    expect(err).toBe('42501');
  });
});
