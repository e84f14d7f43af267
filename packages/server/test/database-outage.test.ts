import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { SupabaseClient } from '@supabase/supabase-js';
import { testBackend } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { canRunCluster, startThrowawayCluster, type PgCluster } from './pg-cluster.ts';
import { createUsers, Inbox, supabaseClient } from './realtime-helpers.ts';
import { uniqueEmail } from './harness.ts';

interface Outcome {
  phase: 'before' | 'down' | 'recovering' | 'after';
  status: number;
  code: string | null;
  ms: number;
}

// Stops and starts a PostgreSQL cluster of its own (never the shared server): PostgreSQL backend only.
describe.skipIf(testBackend() !== 'postgres' || !canRunCluster)('fault: PostgreSQL restarted under load', () => {
  let cluster: PgCluster;
  let server: RunningServer;
  let dataDir: string;
  const clients: SupabaseClient[] = [];

  beforeAll(async () => {
    cluster = await startThrowawayCluster();
    dataDir = mkdtempSync(join(tmpdir(), 'hallpass-outage-'));
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      DATABASE_URL: cluster.url,
      DATABASE_POOL_SIZE: '10',
      HALLPASS_DATA_DIR: dataDir,
      DEV_MAILBOX: 'true',
      RATE_LIMIT_IP_PER_10_MINUTES: '100000',
      LOG_LEVEL: 'silent',
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), print: () => {} });
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) await c.removeAllChannels();
    await server?.close();
    await cluster?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 503 database_unavailable during the outage (never 500, never a hang), recovers by itself, and realtime catches up once each', async () => {
    const [user] = await createUsers(server.deps, 1, 'outage');
    const u = user!;
    const client = await supabaseClient(server, u.token);
    clients.push(client);
    const names = new Inbox<string>();
    await new Promise<void>((resolve, reject) => {
      client
        .channel(`outage:${u.id}`)
        .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'profiles', filter: `email=eq.${u.email}` }, (e) =>
          names.push((e.new as { name: string }).name),
        )
        .subscribe((status, err) => (status === 'SUBSCRIBED' ? resolve() : status !== 'CLOSED' && reject(err ?? new Error(status))));
    });
    const patch = (name: string) =>
      fetch(`${server.url}/api/profile`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
    expect((await patch('before')).status).toBe(200);
    await names.next((n) => n === 'before');

    // Load: sign-in sends and profile reads, 6 at a time, each with a 15 s client timeout.
    let phase: Outcome['phase'] = 'before';
    const outcomes: Outcome[] = [];
    let loading = true;
    const one = async (i: number) => {
      const started = performance.now();
      const at = phase;
      const res =
        i % 2 === 0
          ? await fetch(`${server.url}/api/auth/passwordless/send`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ email: uniqueEmail('outage-load') }),
              signal: AbortSignal.timeout(15_000),
            })
          : await fetch(`${server.url}/api/profile`, { headers: { authorization: `Bearer ${u.token}` }, signal: AbortSignal.timeout(15_000) });
      const body = (await res.json()) as { error?: { code: string } };
      outcomes.push({ phase: at, status: res.status, code: body.error?.code ?? null, ms: performance.now() - started });
    };
    let n = 0;
    const load = Promise.all(
      Array.from({ length: 6 }, async () => {
        while (loading) {
          await one(n++);
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    const waitFor = async (pred: () => boolean) => {
      while (!pred()) await new Promise((r) => setTimeout(r, 50));
    };
    await waitFor(() => outcomes.length >= 20);

    // The database goes down (fast shutdown: every connection is cut).
    await cluster.stop();
    phase = 'down';
    const stoppedAt = performance.now();
    const readyStarted = performance.now();
    const ready = await fetch(`${server.url}/readyz`);
    const readyMs = performance.now() - readyStarted;
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: { code: string } }).error.code).toBe('not_ready');
    await waitFor(() => outcomes.filter((o) => o.phase === 'down').length >= 40);

    // It comes back. Changes committed straight away, while Hallpass's listener is still reconnecting,
    // must reach the subscriber too (read from the event log, not from a notification).
    await cluster.start();
    phase = 'recovering';
    const downMs = performance.now() - stoppedAt;
    const startedAt = performance.now();
    const direct = new pg.Client({ connectionString: cluster.url });
    await direct.connect();
    for (const name of ['while-down-1', 'while-down-2']) await direct.query('update public.profiles set name = $1 where id = $2', [name, u.id]);
    await direct.end();
    while ((await fetch(`${server.url}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
    const recoverMs = performance.now() - startedAt;
    phase = 'after';
    await waitFor(() => outcomes.filter((o) => o.phase === 'after').length >= 20);
    loading = false;
    await load;
    expect((await patch('after')).status).toBe(200);
    await names.next((n) => n === 'after', 15_000);

    // Figures.
    const by = (p: Outcome['phase']) => outcomes.filter((o) => o.phase === p);
    const tally = (os: Outcome[]) => {
      const counts = new Map<string, number>();
      for (const o of os) counts.set(`${o.status}${o.code ? ` ${o.code}` : ''}`, (counts.get(`${o.status}${o.code ? ` ${o.code}` : ''}`) ?? 0) + 1);
      return [...counts].map(([k, v]) => `${k}: ${v}`).join(', ');
    };
    const maxMs = Math.max(...outcomes.map((o) => o.ms));
    console.log(
      `[fault: PostgreSQL restarted] down ${downMs.toFixed(0)} ms; ready again ${recoverMs.toFixed(0)} ms after it started; /readyz answered 503 in ${readyMs.toFixed(0)} ms\n` +
        `  during the outage: ${tally(by('down'))}\n  while recovering: ${tally(by('recovering'))}\n  after: ${tally(by('after'))}\n` +
        `  slowest answer ${maxMs.toFixed(0)} ms of ${outcomes.length}; realtime received ${JSON.stringify(names.items)}`,
    );

    expect(outcomes.some((o) => o.status >= 500 && o.status !== 503)).toBe(false);
    const unavailable = outcomes.filter((o) => o.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    expect(unavailable.every((o) => o.code === 'database_unavailable')).toBe(true);
    expect(by('down').every((o) => o.status === 503 || o.status === 200)).toBe(true);
    expect(by('after').every((o) => o.status === 200)).toBe(true);
    // Not a hang: every request was answered well inside the client's timeout.
    expect(maxMs).toBeLessThan(10_000);
    // Catch-up: each change once, in commit order.
    expect(names.items).toEqual(['before', 'while-down-1', 'while-down-2', 'after']);
  }, 120_000);
});
