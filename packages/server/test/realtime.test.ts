import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findLiveSession } from '../src/sessions/sessions.repository.ts';
import { signAccessToken } from '../src/sessions/sessions.service.ts';
import { manualClock, startTestServer, type TestServer } from './harness.ts';
import { apiKey, Inbox, RawSocket, signIn, subscribed, supabaseClient, type SignedIn } from './realtime-helpers.ts';

let server: TestServer;
const clients: SupabaseClient[] = [];
const sockets: RawSocket[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.removeAllChannels();
  for (const s of sockets.splice(0)) s.close();
});
afterAll(() => server?.stop());

async function client(token?: string) {
  const c = await supabaseClient(server, token);
  clients.push(c);
  return c;
}
async function raw(opts: Parameters<typeof RawSocket.open>[1] = {}) {
  const s = await RawSocket.open(server, { apikey: await apiKey(server, 'anon'), ...opts });
  sockets.push(s);
  return s;
}

/** A token for `user` signed as if at `at` (the server's clock is real; the token's iat/exp move). */
async function tokenAt(user: SignedIn, at: Date): Promise<string> {
  const session = (await findLiveSession(server.db, (JSON.parse(Buffer.from(user.token.split('.')[1]!, 'base64url').toString()) as { session_id: string }).session_id, new Date()))!;
  const { token } = await signAccessToken({ ...server.deps, clock: { now: () => at } }, { id: user.id, email: user.email, tenant_id: session.tenant_id }, session);
  return token;
}

/** One user's channel as an app would open it: own profile row changes plus profile_sync. */
function userChannel(c: SupabaseClient, user: SignedIn, changes: Inbox<any>, syncs: Inbox<any>, config: Record<string, unknown> = {}): RealtimeChannel {
  return c
    .channel(`user:${user.id}`, { config: { private: true, ...config } })
    .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles', filter: `email=eq.${user.email}` }, changes.push)
    .on('broadcast', { event: 'profile_sync' }, syncs.push);
}

describe('supabase-js against /realtime/v1', () => {
  it('delivers own profile changes (via /api/profile and SQL) and profile_sync with Supabase shapes', async () => {
    const me = await signIn(server);
    const changes = new Inbox<any>();
    const syncs = new Inbox<any>();
    await subscribed(userChannel(await client(me.token), me, changes, syncs));

    const patched = await me.browser.patch('/api/profile', { name: 'Ada' });
    expect(patched.status).toBe(200);
    const update = await changes.next((e) => e.new.name === 'Ada');
    expect(update).toMatchObject({
      schema: 'public',
      table: 'profiles',
      eventType: 'UPDATE',
      errors: null,
      new: { id: me.id, email: me.email, name: 'Ada', metadata: {} },
      old: { id: me.id },
    });
    expect(Object.keys(update.old)).toEqual(['id']);
    expect(Number.isNaN(Date.parse(update.commit_timestamp))).toBe(false);

    await server.db.query(`update public.profiles set metadata = '{"plan":"pro"}' where id = $1`, [me.id]);
    expect((await changes.next((e) => e.new.metadata?.plan === 'pro')).eventType).toBe('UPDATE');

    // A second sign-in (another device) broadcasts profile_sync to the first.
    await signInAgain(me);
    const sync = await syncs.next();
    expect(sync).toMatchObject({ type: 'broadcast', event: 'profile_sync', payload: { email: me.email, reason: 'login' } });
    expect(Number.isNaN(Date.parse(sync.payload.at))).toBe(false);
    expect(sync.meta.id).toMatch(/^\d+$/);
  });

  it('sends DELETE with the primary key only, to subscribers whose filter matched the old row', async () => {
    const [me, other] = [await signIn(server), await signIn(server)];
    const mine = new Inbox<any>();
    const theirs = new Inbox<any>();
    await subscribed(userChannel(await client(me.token), me, mine, new Inbox()));
    await subscribed(userChannel(await client(other.token), other, theirs, new Inbox()));
    await server.db.query('delete from public.profiles where id = $1', [me.id]);
    const del = await mine.next((e) => e.eventType === 'DELETE');
    expect(del.old).toEqual({ id: me.id });
    expect(del.new).toEqual({});
    // Marker: an event for `other` arriving proves the DELETE would have arrived before it.
    await server.db.query(`update public.profiles set name = 'marker' where id = $1`, [other.id]);
    await theirs.next((e) => e.new.name === 'marker');
    expect(theirs.items.filter((e) => e.eventType === 'DELETE')).toEqual([]);
  });

  it('closes the channels of a session at logout with a system message', async () => {
    const me = await signIn(server);
    const c = await client(me.token);
    const system = new Inbox<any>();
    const status = new Inbox<string>();
    const ch = c.channel(`user:${me.id}`, { config: { private: true } }).on('system', {}, system.push);
    await new Promise<void>((resolve) => ch.subscribe((s) => (status.push(s), s === 'SUBSCRIBED' && resolve())));
    const out = await me.browser.post('/api/auth/logout');
    expect(out.status).toBe(204);
    expect(await system.next((m) => m.status === 'error')).toMatchObject({ extension: 'system', message: expect.stringMatching(/revoked/i) });
    await status.next((s) => s === 'CLOSED');
  });

  it('replays missed broadcasts and changes when a dropped device rejoins with replay', async () => {
    const me = await signIn(server);
    const first = await client(me.token);
    const changes = new Inbox<any>();
    const syncs = new Inbox<any>();
    await subscribed(userChannel(first, me, changes, syncs));
    await me.browser.patch('/api/profile', { name: 'before' });
    await changes.next((e) => e.new.name === 'before');
    const lastSeen = Date.now();
    first.realtime.disconnect();

    // While offline: two changes and a sign-in elsewhere.
    await me.browser.patch('/api/profile', { name: 'while-away-1' });
    await me.browser.patch('/api/profile', { name: 'while-away-2' });
    await signInAgain(me);

    const again = await client(me.token);
    const changes2 = new Inbox<any>();
    const syncs2 = new Inbox<any>();
    const started = Date.now();
    await subscribed(userChannel(again, me, changes2, syncs2, { broadcast: { replay: { since: lastSeen } } }));
    const latest = await changes2.next((e) => e.new.name === 'while-away-2');
    expect(Date.now() - started).toBeLessThan(1000);
    // The two edits, then the sign-in's own update (last_login), in commit order.
    await changes2.next((e) => e.new.last_login !== update1LastLogin(changes2));
    expect(changes2.items.map((e) => e.new.name)).toEqual(['while-away-1', 'while-away-2', 'while-away-2']);
    expect(latest.eventType).toBe('UPDATE');
    expect((await syncs2.next()).meta).toMatchObject({ replayed: true });
  });

  it('delivers client broadcasts with self and ack (binary frames from realtime-js)', async () => {
    const c = await client();
    const got = new Inbox<any>();
    const ch = c.channel('room-1', { config: { broadcast: { self: true, ack: true } } }).on('broadcast', { event: 'cursor' }, got.push);
    await subscribed(ch);
    expect(await ch.send({ type: 'broadcast', event: 'cursor', payload: { x: 1 } })).toBe('ok');
    expect(await got.next()).toMatchObject({ event: 'cursor', payload: { x: 1 } });
  });
});

describe('protocol', () => {
  it('answers heartbeats, echoes postgres_changes with numeric ids in order and says Subscribed to PostgreSQL', async () => {
    const me = await signIn(server);
    const s = await raw();
    expect(await s.call(null, 'phoenix', 'heartbeat', {})).toEqual({ status: 'ok', response: {} });
    const wanted = [
      { event: 'UPDATE', schema: 'public', table: 'profiles', filter: `email=eq.${me.email}` },
      { event: 'INSERT', schema: 'public', table: 'profiles', filter: `id=eq.${me.id}` },
      { event: '*', schema: 'public', table: 'profiles' },
    ];
    const { joinRef, reply } = await s.join(`realtime:user:${me.id}`, { private: true, postgres_changes: wanted }, me.token);
    expect(reply.status).toBe('ok');
    const echoed = reply.response.postgres_changes as Array<Record<string, unknown>>;
    expect(echoed.map(({ id, ...rest }) => rest)).toEqual(wanted);
    for (const e of echoed) expect(typeof e.id).toBe('number');
    const system = await s.inbox.next((f) => f[3] === 'system');
    expect(system[4]).toEqual({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: `user:${me.id}` });
    expect(system[0]).toBe(joinRef);

    await me.browser.patch('/api/profile', { name: 'ids' });
    // This update's event: the sign-in's INSERT may still be in flight when the channel joins, and
    // then it arrives first (tagged with the INSERT binding's id).
    const change = await s.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data?.type === 'UPDATE' && f[4].data?.record?.name === 'ids');
    expect(change[4].ids.sort()).toEqual([echoed[0]!.id, echoed[2]!.id].sort());
    expect(change[4].data).toMatchObject({ type: 'UPDATE', schema: 'public', table: 'profiles', record: { name: 'ids' }, old_record: { id: me.id } });
    expect(change[4].data.columns).toContainEqual({ name: 'email', type: 'text' });

    expect(await s.call(joinRef, `realtime:user:${me.id}`, 'phx_leave', {})).toEqual({ status: 'ok', response: {} });
  });

  it('speaks vsn 1.0.0 objects', async () => {
    const s = await raw({ vsn: '1.0.0' });
    expect(await s.call(null, 'phoenix', 'heartbeat', {})).toEqual({ status: 'ok', response: {} });
    const { reply } = await s.join('realtime:lobby', { broadcast: { self: true } });
    expect(reply).toEqual({ status: 'ok', response: { postgres_changes: [] } });
  });

  it('survives binary and malformed frames', async () => {
    const s = await raw();
    s.ws.send(Buffer.from([3, 200, 200, 200, 200, 200, 1, 1, 2]));
    s.ws.send(Buffer.from([9, 0, 1, 2, 3]));
    s.ws.send(Buffer.alloc(0));
    s.ws.send('not json');
    s.ws.send('[1,2]');
    // A well-formed binary broadcast on a topic this socket has not joined: an error reply, no crash.
    const frame = Buffer.concat([Buffer.from([3, 0, 1, 10, 1, 0, 1]), Buffer.from('9realtime:xx'), Buffer.from('e'), Buffer.from('{"a":1}')]);
    s.ws.send(frame);
    expect(await s.call(null, 'phoenix', 'heartbeat', {})).toEqual({ status: 'ok', response: {} });
  });

  it('refuses an RLS-scoped join without a user token, with a reason', async () => {
    const s = await raw();
    const { reply } = await s.join('realtime:anything', { postgres_changes: [{ event: '*', schema: 'public', table: 'profiles' }] });
    expect(reply.status).toBe('error');
    expect(reply.response.reason).toMatch(/row-level secured.*access_token/);
  });

  it('refuses forged and expired tokens, and closes a channel whose token expires', async () => {
    const me = await signIn(server);
    const s = await raw();
    const forged = me.token.slice(0, -4) + (me.token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const topic = `realtime:user:${me.id}`;
    expect((await s.join(topic, { private: true }, forged)).reply).toMatchObject({ status: 'error', response: { reason: 'Invalid access token' } });
    const expired = await tokenAt(me, new Date(Date.now() - 3600_000));
    expect((await s.join(topic, { private: true }, expired)).reply.response.reason).toMatch(/expired/i);

    // Valid for about one more second: joined, then told and closed.
    const ttl = server.deps.config.sessions.accessTokenTtl;
    const short = await tokenAt(me, new Date(Date.now() - (ttl - 1) * 1000));
    const { joinRef, reply } = await s.join(topic, { private: true }, short);
    expect(reply.status).toBe('ok');
    const system = await s.inbox.next((f) => f[3] === 'system' && f[0] === joinRef);
    expect(system[4]).toMatchObject({ extension: 'system', status: 'error', message: 'Token has expired' });
    await s.inbox.next((f) => f[3] === 'phx_close' && f[0] === joinRef);
  });

  it('re-binds claims on access_token; an expired one closes the channel', async () => {
    const me = await signIn(server);
    const s = await raw();
    const ttl = server.deps.config.sessions.accessTokenTtl;
    const short = await tokenAt(me, new Date(Date.now() - (ttl - 1) * 1000));
    const pg = { postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${me.id}` }] };
    const a = await s.join(`realtime:user:${me.id}`, { private: true, ...pg }, short);
    const control = await s.join('realtime:control', pg, short);
    expect(await s.call(a.joinRef, `realtime:user:${me.id}`, 'access_token', { access_token: me.token })).toMatchObject({ status: 'ok' });
    // The control channel kept the short token and closes; the re-bound one lives on.
    await s.inbox.next((f) => f[3] === 'phx_close' && f[0] === control.joinRef);
    await me.browser.patch('/api/profile', { name: 'rebound' });
    const change = await s.inbox.next((f) => f[3] === 'postgres_changes');
    expect(change[0]).toBe(a.joinRef);

    const expired = await tokenAt(me, new Date(Date.now() - 3600_000));
    s.send(a.joinRef, `realtime:user:${me.id}`, 'access_token', { access_token: expired });
    expect((await s.inbox.next((f) => f[3] === 'system' && f[0] === a.joinRef && f[4].status === 'error'))[4].message).toMatch(/expired/i);
    await s.inbox.next((f) => f[3] === 'phx_close' && f[0] === a.joinRef);
  });

  it('uses the session cookie of the upgrade when the join carries no user token', async () => {
    const me = await signIn(server);
    const s = await raw({ cookie: `hallpass-access=${me.token}` });
    const pg = [{ event: 'UPDATE', schema: 'public', table: 'profiles', filter: `email=eq.${me.email}` }];
    const { reply } = await s.join(`realtime:user:${me.id}`, { private: true, postgres_changes: pg });
    expect(reply.status).toBe('ok');
    await me.browser.patch('/api/profile', { name: 'by-cookie' });
    expect((await s.inbox.next((f) => f[3] === 'postgres_changes'))[4].data.record.name).toBe('by-cookie');
    // From a foreign origin the cookie is ignored: the same join is anon and refused.
    const foreign = await raw({ cookie: `hallpass-access=${me.token}`, origin: 'https://evil.example' });
    expect((await foreign.join(`realtime:user:${me.id}`, { private: true, postgres_changes: pg })).reply.status).toBe('error');
  });

  it('keeps private topics to their owner', async () => {
    const [me, other] = [await signIn(server), await signIn(server)];
    const s = await raw();
    const theirs = await s.join(`realtime:user:${other.id}`, { private: true }, me.token);
    expect(theirs.reply).toMatchObject({ status: 'error', response: { reason: expect.stringMatching(/only your own/) } });
    const publicName = await s.join(`realtime:user:${other.id}`, {}, me.token);
    expect(publicName.reply.status).toBe('error');
    const anon = await s.join(`realtime:user:${other.id}`, { private: true });
    expect(anon.reply.status).toBe('error');
  });

  it('rejects an invalid apikey at the upgrade', async () => {
    await expect(RawSocket.open(server, { apikey: 'nope' })).rejects.toThrow(/401/);
  });
});

describe('HTTP broadcast', () => {
  it('takes service-key broadcasts (202) and delivers them; refuses other keys', async () => {
    const me = await signIn(server);
    const s = await raw();
    await s.join(`realtime:user:${me.id}`, { private: true }, me.token);
    const service = await apiKey(server, 'service_role');
    const anon = await apiKey(server, 'anon');
    const post = (path: string, body: unknown, key?: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { apikey: key, authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(body),
      });
    const one = await post(`/realtime/v1/api/broadcast/user:${me.id}/events/notice?private=true`, { n: 1 }, service);
    expect(one.status).toBe(202);
    const batch = await post('/realtime/v1/api/broadcast', { messages: [{ topic: `user:${me.id}`, event: 'notice', payload: { n: 2 }, private: true }] }, service);
    expect(batch.status).toBe(202);
    await s.inbox.next((f) => f[3] === 'broadcast' && f[4].payload.n === 2);
    // Only the notices: the sign-in's own profile_sync may land on the fresh socket too.
    expect(s.inbox.items.filter((f) => f[3] === 'broadcast' && f[4].event === 'notice').map((f) => [f[4].event, f[4].payload.n])).toEqual([
      ['notice', 1],
      ['notice', 2],
    ]);
    expect((await post('/realtime/v1/api/broadcast', { messages: [{ topic: 'x', event: 'e', payload: {} }] }, anon)).status).toBe(403);
    expect((await post('/realtime/v1/api/broadcast', { messages: [{ topic: 'x', event: 'e', payload: {} }] })).status).toBe(401);
  });
});

describe('change capture', () => {
  it('passes a gap left by a rolled-back writer without losing what follows', async () => {
    const me = await signIn(server);
    const s = await raw();
    await s.join(`realtime:user:${me.id}`, { private: true, postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${me.id}` }] }, me.token);
    await server.db
      .transaction(async (tx) => {
        await tx.query(`update public.profiles set name = 'rolled back' where id = $1`, [me.id]);
        throw new Error('roll back');
      })
      .catch(() => {});
    await me.browser.patch('/api/profile', { name: 'after the gap' });
    expect((await s.inbox.next((f) => f[3] === 'postgres_changes'))[4].data.record.name).toBe('after the gap');
    expect(s.inbox.items.filter((f) => f[3] === 'postgres_changes')).toHaveLength(1);
  });

  it('a policy that errors for one subscriber drops nothing for the others', async () => {
    await server.db.exec(`
      create table public.board (id serial primary key, body text not null);
      alter table public.board enable row level security;
      -- Divides by zero for one kind of user: their check errors, nobody else's does.
      create policy board_read on public.board for select to authenticated
        using (1 / (case when (select auth.email()) like 'broken-%' then 0 else 1 end) = 1);
      grant select on public.board to authenticated;
      select hallpass.realtime_publish('public.board');`);
    const [ok, broken] = [await signIn(server, 'fine'), await signIn(server, 'broken')];
    const pg = { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'board' }] };
    const a = await raw();
    const b = await raw();
    await a.join('realtime:board', pg, ok.token);
    await b.join('realtime:board', pg, broken.token);
    await server.db.query(`insert into public.board (body) values ('one'), ('two')`);
    await a.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data.record.body === 'two');
    expect(a.inbox.items.filter((f) => f[3] === 'postgres_changes')).toHaveLength(2);
    expect(b.inbox.items.filter((f) => f[3] === 'postgres_changes')).toHaveLength(0);
  });

  it('prunes events older than the retention window', async () => {
    await server.db.query(`update hallpass.realtime_events set created_at = now() - interval '400 days' where id = (select min(id) from hallpass.realtime_events)`);
    expect(await server.realtime.prune()).toBeGreaterThanOrEqual(1);
  });
});

const update1LastLogin = (inbox: Inbox<any>) => inbox.items[0]?.new.last_login;

async function signInAgain(user: SignedIn): Promise<void> {
  const b = server.browser();
  const sent = await b.post('/api/auth/passwordless/send', { email: user.email });
  const mail = await server.latestMail(user.email);
  const res = await b.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
  expect(res.status).toBe(200);
}

describe('client broadcast limit', () => {
  it('refuses broadcasts beyond the per-socket rate with a reason, writes none of them, and allows more as time passes', async () => {
    const clock = manualClock();
    const limited = await startTestServer({ clock, env: { REALTIME_BROADCASTS_PER_SECOND: '2' } });
    const s = await RawSocket.open(limited, { apikey: await apiKey(limited, 'anon') });
    try {
      const topic = `flood-${Date.now()}`;
      const { joinRef, reply } = await s.join(`realtime:${topic}`, {});
      expect(reply.status).toBe('ok');
      const push = (n: number) => s.call(joinRef, `realtime:${topic}`, 'broadcast', { type: 'broadcast', event: 'spam', payload: { n } });
      // A burst of twice the rate goes through; the rest is refused until time passes.
      const replies = [];
      for (let n = 0; n < 8; n++) replies.push(await push(n));
      expect(replies.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'error', 'error', 'error', 'error']);
      expect(replies[4]!.response.reason).toBe('Too many messages per second');
      const logged = await limited.db.query<{ n: number }>("select count(*)::int as n from hallpass.realtime_events where topic = $1", [topic]);
      expect(logged.rows[0]!.n).toBe(4);
      clock.advance(1);
      expect((await push(8)).status).toBe('ok');
      expect((await push(9)).status).toBe('ok');
      expect((await push(10)).status).toBe('error');
    } finally {
      s.close();
      await limited.stop();
    }
  });
});
