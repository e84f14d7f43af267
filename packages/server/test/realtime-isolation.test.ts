import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signAccessToken } from '../src/sessions/sessions.service.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { apiKey, createUsers, Inbox, RawSocket, subscribed, supabaseClient } from './realtime-helpers.ts';

let server: TestServer;
const clients: SupabaseClient[] = [];
const sockets: RawSocket[] = [];
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  for (const c of clients) await c.removeAllChannels();
  for (const s of sockets) s.close();
  await server?.stop();
});

it('50 subscribed users, some probing others: zero foreign events delivered', async () => {
  const users = await createUsers(server.deps, 50, 'iso');
  const received = new Map<string, Inbox<{ channel: string; payload: any }>>();
  const attackers = users.slice(0, 10);

  await Promise.all(
    users.map(async (u, i) => {
      const c = await supabaseClient(server, u.token);
      clients.push(c);
      const inbox = new Inbox<{ channel: string; payload: any }>();
      received.set(u.id, inbox);
      const on = (channel: string) => (payload: any) => inbox.push({ channel, payload });
      await subscribed(
        c
          .channel(`user:${u.id}`, { config: { private: true } })
          .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles', filter: `email=eq.${u.email}` }, on('own'))
          .on('broadcast', { event: 'profile_sync' }, on('own-sync')),
      );
      if (i >= attackers.length) return;
      const victim = users[(i + 25) % users.length]!;
      // Filters naming someone else's row join fine; RLS drops every event of that row.
      await subscribed(
        c
          .channel(`probe-${i}`)
          .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles', filter: `email=eq.${victim.email}` }, on('foreign-filter'))
          .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles', filter: `id=in.(${victim.id},${u.id})` }, on('in-filter'))
          .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles' }, on('wildcard-table'))
          .on('postgres_changes', { event: '*', schema: 'public' }, on('wildcard-schema')),
      );
      // Another user's private topic, privately or by its public name: refused at join.
      const privately = c.channel(`user:${victim.id}`, { config: { private: true } }).on('broadcast', { event: '*' }, on('victim-topic'));
      await expect(subscribed(privately)).rejects.toThrow(/CHANNEL_ERROR/);
      // realtime-js keeps one channel per topic: remove the refused one before trying the public name.
      await c.removeChannel(privately);
      const publicly = c.channel(`user:${victim.id}`).on('broadcast', { event: '*' }, on('victim-public'));
      await expect(subscribed(publicly)).rejects.toThrow(/CHANNEL_ERROR/);
      await c.removeChannel(publicly);
    }),
  );

  // Forged and expired tokens for a victim, on raw sockets: refused.
  const victim = users[49]!;
  const raw = await RawSocket.open(server, { apikey: await apiKey(server, 'anon') });
  sockets.push(raw);
  const forged = victim.token.replace(/\.[^.]+$/, '.' + Buffer.alloc(64, 7).toString('base64url'));
  const [, body] = victim.token.split('.');
  const claims = JSON.parse(Buffer.from(body!, 'base64url').toString()) as { session_id: string; app_metadata: { tenant_id: string } };
  const { token: expired } = await signAccessToken(
    { ...server.deps, clock: { now: () => new Date(Date.now() - 7200_000) } },
    { id: victim.id, email: victim.email, tenant_id: claims.app_metadata.tenant_id },
    { id: claims.session_id, amr: [] },
  );
  for (const token of [forged, expired]) {
    const { reply } = await raw.join(`realtime:user:${victim.id}`, { private: true, postgres_changes: [{ event: '*', schema: 'public', table: 'profiles' }] }, token);
    expect(reply.status).toBe('error');
  }

  // Every profile changes, and every user gets a profile_sync.
  for (const u of users) {
    await server.db.query(`update public.profiles set name = $2 where id = $1`, [u.id, `name-${u.id}`]);
    await server.db.query(
      `insert into hallpass.realtime_events (kind, topic, event, payload, private) values ('broadcast', $1, 'profile_sync', $2, true)`,
      [`user:${u.id}`, JSON.stringify({ email: u.email, reason: 'login', at: new Date().toISOString() })],
    );
  }
  for (const u of users) {
    const inbox = received.get(u.id)!;
    await inbox.next((e) => e.channel === 'own' && e.payload.new.name === `name-${u.id}`);
    await inbox.next((e) => e.channel === 'own-sync');
  }
  for (const u of attackers) {
    // The wildcard probes see their owner's own row (RLS allows it): wait for those, then judge.
    const inbox = received.get(u.id)!;
    await inbox.next((e) => e.channel === 'wildcard-schema' && e.payload.new.id === u.id);
    await inbox.next((e) => e.channel === 'in-filter' && e.payload.new.id === u.id);
  }

  let foreign = 0;
  for (const u of users) {
    for (const e of received.get(u.id)!.items) {
      const row = e.payload.new ?? {};
      const aboutSomeoneElse = e.channel.endsWith('sync') ? e.payload.payload.email !== u.email : row.id !== u.id || row.email !== u.email;
      if (aboutSomeoneElse || e.channel.startsWith('victim') || e.channel === 'foreign-filter') foreign++;
    }
  }
  expect(foreign).toBe(0);
  expect([...received.values()].reduce((n, inbox) => n + inbox.items.length, 0)).toBeGreaterThanOrEqual(100);
});
