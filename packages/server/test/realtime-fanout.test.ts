import { createMetrics } from '../src/metrics/metrics.ts';
import { randomUUID } from 'node:crypto';
import type { Claims } from '@hallpass/db';
import { createTestDatabase, type TestDatabase } from '@hallpass/db/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Hub, type HubChannel } from '../src/realtime/realtime.hub.ts';
import type { Identity } from '../src/sessions/identity.ts';
import type { OutgoingFrame } from '../src/realtime/realtime.protocol.ts';
import { readEventsAfter } from '../src/realtime/realtime.repository.ts';
import { runMigrations } from '../src/server.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await runMigrations(t.db);
  // A members-only table: a row is visible to everyone, or only to the users listed in it.
  await t.db.exec(`
    create table public.deals (id int primary key, audience text not null, readers uuid[] not null default '{}', note text);
    alter table public.deals enable row level security;
    alter table public.deals force row level security;
    create policy deals_read on public.deals for select to authenticated
      using (audience = 'everyone' or (select auth.uid()) = any (readers));
    grant select on public.deals to authenticated;
    select hallpass.realtime_publish('public.deals');`);
});
afterAll(() => t?.drop());

interface Received {
  eventId: number;
  payload: { ids: number[]; data: { record: { id: number; note: string | null } } };
}

function channel(name: string, claims: Claims): HubChannel & { received: Received[] } {
  // Synthetic claims (no session row): the hub reads only role, claims and sub of an identity.
  const identity = { kind: 'user', role: claims.role, via: 'bearer', claims, claimsJson: JSON.stringify(claims), sessionId: null, sub: claims.sub ?? null, expiresAt: null, liveSession: null } as unknown as Identity;
  const received: Received[] = [];
  return {
    key: name,
    subTopic: name,
    isPrivate: false,
    broadcastSelf: false,
    bindings: [{ id: name.length, event: '*', schema: 'public', table: 'deals', filter: null }],
    identity,
    received,
    deliver(eventId: number, frame: OutgoingFrame) {
      received.push({ eventId, payload: 'payloadJson' in frame ? JSON.parse(frame.payloadJson) : frame.payload });
    },
    kick() {},
  };
}

it('decides a fan-out per subscriber in chunked RLS calls: members get every event in order, others none of the hidden row', async () => {
  const users = Array.from({ length: 7 }, () => randomUUID());
  const member = (i: number) => i % 2 === 1;
  const channels = users.map((sub, i) => channel(`c${i}`, { role: 'authenticated', sub, email: `u${i}@example.com` }));
  // The same user (same claims) on a second channel: still a decision of its own.
  const twin = channel('c1-twin', channels[1]!.identity.claims);
  const service = channel('service', { role: 'service_role' });
  // Three checks per call, two calls at a time: the seven users land in different calls.
  const hub = new Hub(t.db, pino({ level: 'silent' }), createMetrics(), { checksPerCall: 3, parallelCalls: 2 });
  for (const c of [...channels, twin, service]) {
    await hub.table('public', 'deals');
    hub.add(c);
  }

  await t.db.query(`insert into public.deals (id, audience, readers) values (1, 'members', $1), (2, 'everyone', '{}')`, [users.filter((_, i) => member(i))]);
  await t.db.query(`update public.deals set note = 'first' where id = 1`);
  await t.db.query(`update public.deals set note = 'second' where id = 1`);
  await t.db.query(`update public.deals set note = 'open' where id = 2`);
  const { rows } = await readEventsAfter(t.db, 0, 100);
  const deals = rows.filter((r) => r.table_name === 'deals');
  expect(deals).toHaveLength(5);
  await hub.dispatch(deals);

  const ofRow = (id: number) => deals.filter((r) => (r.record as { id: number }).id === id).map((r) => r.id);
  for (const [i, c] of channels.entries()) {
    const expected = member(i) ? deals.map((r) => r.id) : ofRow(2);
    expect(c.received.map((r) => r.eventId), c.key).toEqual(expected);
  }
  expect(twin.received.map((r) => r.eventId)).toEqual(deals.map((r) => r.id));
  expect(service.received.map((r) => r.eventId)).toEqual(deals.map((r) => r.id));
  // A member's copy carries the row as committed, and the binding it matched.
  expect(channels[1]!.received.map((r) => r.payload.data.record.note)).toEqual([null, null, 'first', 'second', 'open']);
  expect(channels[1]!.received[0]!.payload.ids).toEqual([channels[1]!.bindings[0]!.id]);
  // One decision per (subscriber channel, row): 8 user channels x 2 rows; service_role needs none.
  expect(hub.stats.checks).toBe(16);
  expect(hub.stats.dropped).toBe(4 * 3);
});

/**
 * Two signed-in channels `a` and `b` on a hub that makes one check per call, one call at a time (so
 * `a` is decided while `b` waits its turn), and the events `write` then logs.
 */
async function twoInTurn(name: string, write: (a: HubChannel, b: HubChannel) => Promise<void>) {
  const [a, b] = [randomUUID(), randomUUID()].map((sub, i) => channel(`${name}${i}`, { role: 'authenticated', sub, email: `${name}${i}@example.com` }));
  const hub = new Hub(t.db, pino({ level: 'silent' }), createMetrics(), { checksPerCall: 1, parallelCalls: 1 });
  await hub.table('public', 'deals');
  hub.add(a!);
  hub.add(b!);
  const { rows: before } = await t.db.query<{ id: number }>('select coalesce(max(id), 0)::int as id from hallpass.realtime_events');
  await write(a!, b!);
  const { rows } = await readEventsAfter(t.db, before[0]!.id, 100);
  return { a: a!, b: b!, hub, rows };
}

it('a change that comes while a channel waits its turn joins that turn; one that comes while the channel is being decided gets a decision of its own', async () => {
  const { a, b, hub, rows } = await twoInTurn('turn', async (a, b) => {
    await t.db.query(`insert into public.deals (id, audience, readers) values (10, 'members', $1)`, [[a.identity.sub, b.identity.sub]]);
    await t.db.query(`update public.deals set note = 'sale' where id = 10`);
  });
  expect(rows).toHaveLength(2);

  // accept() returns once queued: the second change arrives while `a` is in its call and `b` waits.
  await hub.accept([rows[0]!]);
  await hub.accept([rows[1]!]);
  await hub.idle();

  for (const c of [a, b]) expect(c.received.map((r) => r.eventId), c.key).toEqual(rows.map((r) => r.id));
  expect(b.received.map((r) => r.payload.data.record.note)).toEqual([null, 'sale']);
  // a: one decision per turn (two turns); b: both changes in its one turn.
  expect(hub.stats.checks).toBe(3);
  expect(hub.queuedCount).toBe(0);
});

/**
 * `a` is in the first call and `b` waits its turn (accept() returns once queued) when `leaving`
 * leaves the hub, as a socket's leave or kick does: it must get nothing, the other its event.
 */
async function oneLeavesMidTurn(name: string, id: number, leaving: 'a' | 'b') {
  const ctx = await twoInTurn(name, async () => {
    await t.db.query(`insert into public.deals (id, audience) values ($1, 'everyone')`, [id]);
  });
  await ctx.hub.accept(ctx.rows);
  ctx.hub.remove(ctx[leaving]);
  await ctx.hub.idle();
  expect(ctx[leaving].received).toEqual([]);
  expect(ctx[leaving === 'a' ? 'b' : 'a'].received.map((r) => r.eventId)).toEqual(ctx.rows.map((r) => r.id));
  return ctx.hub;
}

it('drops the queued events of a channel that leaves before its turn, undecided', async () => {
  const hub = await oneLeavesMidTurn('gone', 20, 'b');
  expect(hub.stats.checks).toBe(1);
  expect(hub.stats.dropped).toBe(1);
});

it('attack: a channel kicked (its session revoked) while its RLS decision is in flight is sent nothing after the kick', async () => {
  // `a`'s decision is in flight when the socket kicks it (as a revocation does).
  await oneLeavesMidTurn('kicked', 30, 'a');
});
