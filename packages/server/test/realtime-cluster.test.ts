import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SupabaseClient } from '@supabase/supabase-js';
import { testBackend } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInWithCode, startTestServer, type TestServer } from './harness.ts';
import { apiKey, createUsers, Inbox, RawSocket, signIn, subscribed, supabaseClient, type Target } from './realtime-helpers.ts';

const mainTs = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

/** A second Hallpass process on the same database and data dir (so the same signing keys). */
async function startSecondInstance(a: TestServer): Promise<{ target: Target; child: ChildProcess }> {
  const { rows } = await a.db.query<{ db: string }>('select current_database() as db');
  const url = new URL(process.env.TEST_DATABASE_URL!);
  url.pathname = `/${rows[0]!.db}`;
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs, 'serve'], {
    env: { ...process.env, DATABASE_URL: url.toString(), HALLPASS_DATA_DIR: a.dataDir, PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'silent', DEV_MAILBOX: 'true' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const bound = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /bound to (http:\/\/\S+?)\)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`second instance exited with ${code}: ${out}`)));
  });
  return { target: { url: bound, deps: a.deps }, child };
}

describe.skipIf(testBackend() !== 'postgres')('two instances on one PostgreSQL', () => {
  let a: TestServer;
  let b: { target: Target; child: ChildProcess };
  const clients: SupabaseClient[] = [];
  const sockets: RawSocket[] = [];

  beforeAll(async () => {
    a = await startTestServer();
    b = await startSecondInstance(a);
  });
  afterAll(async () => {
    for (const c of clients) await c.removeAllChannels();
    for (const s of sockets) s.close();
    b?.child.kill('SIGTERM');
    await a?.stop();
  });

  const patchProfile = (token: string, body: unknown) =>
    fetch(`${a.url}/api/profile`, { method: 'PATCH', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('a write through instance A reaches a subscriber on instance B; revocation on A closes it on B', async () => {
    const [u] = await createUsers(a.deps, 1, 'cluster');
    const c = await supabaseClient(b.target, u!.token);
    clients.push(c);
    const changes = new Inbox<any>();
    const syncs = new Inbox<any>();
    const system = new Inbox<any>();
    const status = new Inbox<string>();
    const ch = c
      .channel(`user:${u!.id}`, { config: { private: true } })
      .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'profiles', filter: `email=eq.${u!.email}` }, changes.push)
      .on('broadcast', { event: 'notice' }, syncs.push)
      .on('system', {}, system.push);
    await new Promise<void>((resolve) => ch.subscribe((s) => (status.push(s), s === 'SUBSCRIBED' && resolve())));

    expect((await patchProfile(u!.token, { name: 'from A' })).status).toBe(200);
    expect((await changes.next()).new).toMatchObject({ id: u!.id, name: 'from A' });

    const service = await apiKey(a, 'service_role');
    const sent = await fetch(`${a.url}/realtime/v1/api/broadcast/user:${u!.id}/events/notice?private=true`, {
      method: 'POST',
      headers: { apikey: service, 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'B' }),
    });
    expect(sent.status).toBe(202);
    expect((await syncs.next()).payload).toEqual({ hello: 'B' });

    const out = await fetch(`${a.url}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${u!.token}` } });
    expect(out.status).toBe(204);
    expect((await system.next((m) => m.status === 'error')).message).toMatch(/revoked/i);
    await status.next((s) => s === 'CLOSED');
  });

  it('a sign-in on instance A reaches profile_sync subscribers on B through the post-commit wake, not a NOTIFY in its transaction', async () => {
    // The sign-in transaction itself sends nothing (migration 0011); instance A wakes the others
    // after commit with a notification that names A, so B must hear one with a non-empty payload.
    const wakes = new Inbox<string>();
    const unlisten = await a.db.listen('hallpass_realtime', wakes.push);
    try {
      const first = await signIn(a, 'cluster-sync');
      const c = await supabaseClient(b.target, first.token);
      clients.push(c);
      const syncs = new Inbox<any>();
      await subscribed(c.channel(`user:${first.id}`, { config: { private: true } }).on('broadcast', { event: 'profile_sync' }, syncs.push));

      // Another device of the same user signs in through A.
      await signInWithCode(a, a.browser(), first.email);
      expect(await syncs.next()).toMatchObject({ event: 'profile_sync', payload: { email: first.email, reason: 'login' } });
      expect(await wakes.next((origin) => origin !== '')).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await unlisten();
    }
  });

  it('loses nothing when two transactions commit in the opposite order to their event ids', async () => {
    const [first, second] = await createUsers(a.deps, 2, 'order');
    const s = await RawSocket.open(b.target, { apikey: await apiKey(a, 'service_role') });
    sockets.push(s);
    await s.join('realtime:watch', { postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles' }] });
    const events = () => s.inbox.items.filter((f) => f[3] === 'postgres_changes').map((f) => f[4].data.record.id as string);

    let releaseFirst!: () => void;
    const firstMayCommit = new Promise<void>((r) => (releaseFirst = r));
    let firstWrote!: () => void;
    const firstHasWritten = new Promise<void>((r) => (firstWrote = r));
    // T1 takes the lower event id, then waits; T2 takes the higher id and commits first.
    const t1 = a.db.transaction(async (tx) => {
      await tx.query(`update public.profiles set name = 't1' where id = $1`, [first!.id]);
      firstWrote();
      await firstMayCommit;
    });
    await firstHasWritten;
    await a.db.transaction((tx) => tx.query(`update public.profiles set name = 't2' where id = $1`, [second!.id]));
    await s.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data.record.id === second!.id);
    releaseFirst();
    await t1;
    await s.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data.record.id === first!.id);
    expect(events()).toEqual([second!.id, first!.id]);
    const ids = await a.db.query<{ id: number; who: string }>(
      `select id, record->>'id' as who from hallpass.realtime_events where record->>'id' = any ($1) and op = 'UPDATE' order by id`,
      [[first!.id, second!.id]],
    );
    expect(ids.rows.map((r) => r.who)).toEqual([first!.id, second!.id]);
  });

  it('waits for a running writer whose transaction id is newer than the last completed one', async () => {
    // A snapshot's xmax is "latest completed xid + 1"; a writer still running may hold a higher xid.
    // Here T2 takes its xid first, T1 takes a newer xid and the lower event id, T2 commits: a rule
    // based on xmax would declare T1's event id dead at the next read and lose it.
    const [first, second] = await createUsers(a.deps, 2, 'xid');
    const s = await RawSocket.open(a, { apikey: await apiKey(a, 'service_role') });
    sockets.push(s);
    await s.join('realtime:xid', { broadcast: { self: true }, postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles' }] });
    const gate = () => {
      let open!: () => void;
      return { wait: new Promise<void>((r) => (open = r)), open: () => open() };
    };
    const [t2HasXid, t1HasWritten, t2MayWrite, t1MayCommit] = [gate(), gate(), gate(), gate()];
    const t2 = a.db.transaction(async (tx) => {
      await tx.query('select pg_current_xact_id()');
      t2HasXid.open();
      await t2MayWrite.wait;
      await tx.query(`update public.profiles set name = 't2' where id = $1`, [second!.id]);
    });
    await t2HasXid.wait;
    const t1 = a.db.transaction(async (tx) => {
      await tx.query(`update public.profiles set name = 't1' where id = $1`, [first!.id]);
      t1HasWritten.open();
      await t1MayCommit.wait;
    });
    await t1HasWritten.wait;
    t2MayWrite.open();
    await t2;
    await s.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data.record.id === second!.id);
    // Make the reader read again while T1 is still open.
    await s.call(s.inbox.items[0]![0], 'realtime:xid', 'broadcast', { type: 'broadcast', event: 'tick', payload: {} });
    await s.inbox.next((f) => f[3] === 'broadcast' && f[4].event === 'tick');
    t1MayCommit.open();
    await t1;
    await s.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data.record.id === first!.id);
  });

  it('keeps per-row order when writers to one row queue on its lock', async () => {
    const [u] = await createUsers(a.deps, 1, 'row');
    const s = await RawSocket.open(a, { apikey: await apiKey(a, 'service_role') });
    sockets.push(s);
    await s.join('realtime:row', { postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${u!.id}` }] });
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.db.query(`update public.profiles set metadata = jsonb_build_object('n', coalesce((metadata->>'n')::int, 0) + 1) where id = $1`, [u!.id])));
    await s.inbox.next((f) => f[3] === 'postgres_changes' && f[4].data.record.metadata.n === 20, 15_000);
    const seen = s.inbox.items.filter((f) => f[3] === 'postgres_changes').map((f) => f[4].data.record.metadata.n as number);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
