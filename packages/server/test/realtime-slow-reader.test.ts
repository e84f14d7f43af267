import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { insertBroadcast } from '../src/realtime/realtime.repository.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { apiKey, RawSocket } from './realtime-helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 180_000);
afterAll(() => server?.stop());

it('slow-reader memory exhaustion: a socket that stops reading is closed once 1 MB is queued for it, and readers on the same topic get everything', async () => {
  const anon = await apiKey(server, 'anon');
  const stalled = await RawSocket.open(server, { apikey: anon });
  const reader = await RawSocket.open(server, { apikey: anon });
  for (const s of [stalled, reader]) expect((await s.call('1', 'realtime:sale', 'phx_join', { config: {} })).status).toBe('ok');
  expect(server.realtime.socketCount()).toBe(2);
  // The client stops reading: what the server sends piles up in the kernel's buffers, then in ws's.
  stalled.ws.pause();

  // 24 MB of broadcasts, more than loopback socket buffers absorb.
  const message = 'x'.repeat(60 * 1024);
  const total = 400;
  for (let i = 0; i < total; i += 50) {
    await server.deps.db.transaction(async (tx) => {
      for (let k = i; k < i + 50; k++) await insertBroadcast(tx, { topic: 'sale', event: 'flood', payload: { k, message }, private: false });
    });
  }

  await vi.waitFor(() => expect(server.realtime.socketCount()).toBe(1), { timeout: 60_000, interval: 100 });
  await reader.inbox.next((f) => f[3] === 'broadcast' && f[4].payload.k === total - 1, 60_000);
  expect(reader.inbox.items.filter((f) => f[3] === 'broadcast').map((f) => f[4].payload.k)).toEqual(Array.from({ length: total }, (_, k) => k));
  stalled.ws.resume();
  await stalled.closed;
  reader.close();
}, 120_000);
