import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultTenantId } from '../src/passwordless/passwordless.service.ts';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';
import { Inbox, subscribed, supabaseClient } from './realtime-helpers.ts';
import { seedUsers, type SeededUser } from './seed.ts';

// Finding 4 of issue 9: a user subscribed to DELETE on profiles with `filter: email=eq.<someone else>`
// received that person's id when their row was deleted, across users and across tenants, and learned
// from it that the address exists. A DELETE now reaches only who could read the row before it went.

let server: TestServer;
let betaTenant: string;
const clients: SupabaseClient[] = [];

beforeAll(async () => {
  server = await startTestServer();
  betaTenant = (await server.db.query<{ id: string }>(`insert into public.tenants (slug, name) values ('beta', 'Beta') returning id`)).rows[0]!.id;
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.removeAllChannels();
});
afterAll(() => server?.stop());

async function client(user: SeededUser): Promise<SupabaseClient> {
  const c = await supabaseClient(server, user.token);
  clients.push(c);
  return c;
}

/** Subscribes `user` (unmodified supabase-js) to DELETE events on profiles matching `filter`. */
async function watchDeletes(user: SeededUser, topic: string, filter: string): Promise<Inbox<any>> {
  const inbox = new Inbox<any>();
  await subscribed(
    (await client(user)).channel(topic).on('postgres_changes', { event: 'DELETE', schema: 'public', table: 'profiles', filter }, inbox.push),
  );
  return inbox;
}

/**
 * Proves a DELETE did not reach `inbox`: an UPDATE of the watcher's own row, on a channel of the same
 * socket, is logged after the delete and delivered in log order, so once it is here the delete would be.
 */
async function expectNothingBefore(watcher: SeededUser, inbox: Inbox<any>): Promise<void> {
  const marker = new Inbox<any>();
  await subscribed(
    clients
      .at(-1)!
      .channel(`marker-${watcher.id}`)
      .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${watcher.id}` }, marker.push),
  );
  await server.db.query(`update public.profiles set name = 'marker' where id = $1`, [watcher.id]);
  await marker.next((e) => e.new.name === 'marker');
  expect(inbox.items).toEqual([]);
}

describe('attack: realtime DELETE leak', () => {
  it("does not send another user's DELETE to a subscriber filtering on their email; the owner still gets it", async () => {
    const [victim, attacker] = await seedUsers(server.deps, server.db, [
      { email: uniqueEmail('victim'), tenantId: defaultTenantId },
      { email: uniqueEmail('attacker'), tenantId: defaultTenantId },
    ]);
    const owner = await watchDeletes(victim!, `own-${victim!.id}`, `email=eq.${victim!.email}`);
    const probe = await watchDeletes(attacker!, `probe-${attacker!.id}`, `email=eq.${victim!.email}`);

    await server.db.query('delete from public.profiles where id = $1', [victim!.id]);

    const own = await owner.next((e) => e.eventType === 'DELETE');
    expect(own.old).toEqual({ id: victim!.id });
    await expectNothingBefore(attacker!, probe);
  });

  it('does not send a DELETE across tenants to a user whose own address is the same', async () => {
    const email = uniqueEmail('twin');
    const [inBeta, inDefault] = await seedUsers(server.deps, server.db, [
      { email, tenantId: betaTenant },
      { email, tenantId: defaultTenantId },
    ]);
    const betaOwner = await watchDeletes(inBeta!, `own-${inBeta!.id}`, `email=eq.${email}`);
    // The default tenant's twin filters on its own address: the beta row matches the filter.
    const twin = await watchDeletes(inDefault!, `own-${inDefault!.id}`, `email=eq.${email}`);

    await server.db.query('delete from public.profiles where id = $1', [inBeta!.id]);

    expect((await betaOwner.next((e) => e.eventType === 'DELETE')).old).toEqual({ id: inBeta!.id });
    await expectNothingBefore(inDefault!, twin);
  });

  it('refuses a filter on a column the subscriber may not select', async () => {
    await server.db.exec(`
      create table public.vault (id serial primary key, owner text not null, secret text not null);
      alter table public.vault enable row level security;
      create policy vault_read on public.vault for select to authenticated using (true);
      grant select (id, owner) on public.vault to authenticated;
      select hallpass.realtime_publish('public.vault');`);
    const [user] = await seedUsers(server.deps, server.db, [{ email: uniqueEmail('vault'), tenantId: defaultTenantId }]);
    const c = await client(user!);
    const refused = c.channel('vault-secret').on('postgres_changes', { event: '*', schema: 'public', table: 'vault', filter: 'secret=eq.hunter2' }, () => {});
    await expect(subscribed(refused)).rejects.toThrow(/CHANNEL_ERROR.*permission denied for the filter column/);
    // A column they may read filters as usual.
    const allowed = c.channel('vault-owner').on('postgres_changes', { event: '*', schema: 'public', table: 'vault', filter: 'owner=eq.me' }, () => {});
    await subscribed(allowed);
  });
});
