import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { insertBroadcasts } from '../src/realtime/realtime.repository.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { apiKey, RawSocket } from './realtime-helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 180_000);
afterAll(() => server?.stop());

it('slow-reader memory exhaustion: a socket that stops reading is closed once 4 MB is queued for it, and readers on the same topic get everything', async () => {
  const anon = await apiKey(server, 'anon');
  const stalled = await RawSocket.open(server, { apikey: anon });
  const reader = await RawSocket.open(server, { apikey: anon });
  for (const s of [stalled, reader]) expect((await s.call('1', 'realtime:sale', 'phx_join', { config: {} })).status).toBe('ok');
  expect(server.realtime.socketCount()).toBe(2);
  // The client stops reading: what the server sends piles up in the kernel's buffers, then in ws's.
  stalled.ws.pause();

  // 30 MB of broadcasts, more than loopback socket buffers absorb, in bursts of 1.2 MB that a
  // client that reads takes in before the next.
  const message = 'x'.repeat(60 * 1024);
  const total = 500;
  const burst = 20;
  for (let i = 0; i < total && server.realtime.socketCount() === 2; i += burst) {
    await server.deps.db.transaction(async (tx) => {
      for (let k = i; k < i + burst; k++) await insertBroadcasts(tx, [{ topic: 'sale', event: 'flood', payload: { k, message }, private: false }]);
    });
    await reader.inbox.next((f) => f[3] === 'broadcast' && f[4].payload.k === i + burst - 1, 30_000);
  }

  await vi.waitFor(() => expect(server.realtime.socketCount()).toBe(1), { timeout: 60_000, interval: 100 });
  const sent = Math.max(...reader.inbox.items.filter((f) => f[3] === 'broadcast').map((f) => f[4].payload.k as number)) + 1;
  expect(reader.inbox.items.filter((f) => f[3] === 'broadcast').map((f) => f[4].payload.k)).toEqual(Array.from({ length: sent }, (_, k) => k));
  stalled.ws.resume();
  await stalled.closed;
  reader.close();
}, 120_000);
