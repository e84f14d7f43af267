import pg from 'pg';
import { testBackend } from '@hallpass/db/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { MailTransport } from '../src/mail/transports.ts';
import { startTestServer, uniqueEmail } from './harness.ts';
import { RawSocket } from './realtime-helpers.ts';
import { processFixture, startServerProcess, type ServerProcess } from './server-process.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

describe('graceful shutdown', () => {
  it('hands back the outbox leases it holds, so another instance sends that mail at once', async () => {
    let started!: () => void;
    const firstSend = new Promise<void>((resolve) => (started = resolve));
    // A relay that never answers: the first mail stays on the wire, the rest wait behind it.
    const stuck: MailTransport = { kind: 'smtp', send: () => (started(), new Promise(() => {})), close: async () => {} };
    const server = await startTestServer({ mailer: stuck, outbox: { maxInFlight: 1, stopWaitMs: 200 } });
    cleanup.push(() => server.stop());
    for (let i = 0; i < 3; i++) expect((await server.browser().post('/api/auth/passwordless/send', { email: uniqueEmail('lease') })).status).toBe(200);
    await firstSend;
    await server.close();
    const { rows } = await server.db.query<{ status: string; leased: boolean }>(
      `select status, locked_until is not null as leased from hallpass.mail_outbox order by id`,
    );
    // The one on the wire keeps its lease (it may have reached the relay); the two waiting are free.
    expect(rows).toEqual([
      { status: 'sending', leased: true },
      { status: 'pending', leased: false },
      { status: 'pending', leased: false },
    ]);
  }, 120_000);

  // Three server processes on one PostgreSQL database; one is stopped with SIGTERM under load and
  // started again (a rolling restart), as an orchestrator does.
  it.runIf(testBackend() === 'postgres')(
    'SIGTERM: stops accepting, finishes requests in flight, closes realtime with 1001, exits within 10 s; a rolling restart under load loses no sign-in',
    async () => {
      const { t, sink, env } = await processFixture(cleanup, {
        DATABASE_POOL_SIZE: '10',
        // One public origin for the three, as behind a balancer.
        APP_BASE_URL: 'http://127.0.0.1',
      });
      // One after another: the first writes the signing key into the shared data dir.
      const instances: ServerProcess[] = [];
      for (let i = 0; i < 3; i++) instances.push(await startServerProcess(env));
      cleanup.push(() => Promise.all(instances.map((s) => s.stop())));

      // A client that, like a load balancer, tries the next instance when one refuses the connection.
      let retries = 0;
      const call = async (i: number, path: string, init: RequestInit = {}): Promise<Response> => {
        for (let attempt = 0; ; attempt++) {
          const s = instances[(i + attempt) % 3]!;
          try {
            return await fetch(`${s.url}${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
          } catch (err) {
            if (attempt >= 8) throw err;
            retries++;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      };
      const json = (body: unknown): RequestInit => ({
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1' },
        body: JSON.stringify(body),
      });
      const total = 120;
      const latencies: number[] = [];
      let done = 0;
      const signIn = async (i: number) => {
        const started = performance.now();
        const email = uniqueEmail('rolling');
        const sent = await call(i, '/api/auth/passwordless/send', json({ email }));
        expect(sent.status).toBe(200);
        const { authRequestId } = (await sent.json()) as { authRequestId: string };
        const code = /Your code: (\d{6})/.exec((await sink.waitFor(email)).text ?? '')![1];
        const verified = await call(i + 1, '/api/auth/passwordless/verify', json({ authRequestId, code }));
        expect(verified.status).toBe(200);
        const cookie = verified.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
        expect((await call(i + 2, '/api/auth/session', { headers: { cookie } })).status).toBe(200);
        latencies.push(performance.now() - started);
        done++;
      };
      let next = 0;
      const load = Promise.all(
        Array.from({ length: 12 }, async () => {
          while (next < total) await signIn(next++);
        }),
      );
      while (done < 30) await new Promise((r) => setTimeout(r, 20));

      // On the instance about to stop: a realtime socket, and a request held in flight by a row lock.
      const target = instances[1]!;
      const socket = await RawSocket.open({ url: target.url, deps: undefined as never });
      expect((await socket.join('realtime:lobby', {})).reply.status).toBe('ok');
      const email = uniqueEmail('inflight');
      const sent = (await (await fetch(`${target.url}/api/auth/passwordless/send`, json({ email }))).json()) as { authRequestId: string };
      const code = /Your code: (\d{6})/.exec((await sink.waitFor(email)).text ?? '')![1];
      const v = await fetch(`${target.url}/api/auth/passwordless/verify`, json({ authRequestId: sent.authRequestId, code }));
      const cookie = v.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const locker = new pg.Client({ connectionString: t.url! });
      await locker.connect();
      cleanup.push(() => locker.end());
      await locker.query('begin');
      await locker.query('select 1 from public.profiles where email = $1 for update', [email]);
      const inFlight = fetch(`${target.url}/api/profile`, {
        method: 'PATCH',
        headers: { cookie, 'content-type': 'application/json', origin: 'http://127.0.0.1' },
        body: JSON.stringify({ name: 'in flight' }),
      });
      // Wait until the PATCH is blocked on the lock inside the server.
      const waiting = async () =>
        (await locker.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`)).rows[0]!.n;
      while ((await waiting()) === 0) await new Promise((r) => setTimeout(r, 20));

      const sigtermAt = performance.now();
      const exited = target.stop('SIGTERM');
      const closeCode = await socket.closed;
      const socketClosedMs = performance.now() - sigtermAt;
      // Not accepting any more: a new connection is refused while the in-flight request still runs.
      await expect(fetch(`${target.url}/healthz`)).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 300));
      await locker.query('commit');
      const finished = await inFlight;
      const { code: exitCode, ms: exitMs } = await exited;
      expect(closeCode).toBe(1001);
      expect(finished.status).toBe(200);
      expect(exitCode).toBe(0);
      expect(exitMs).toBeLessThan(10_000);

      // Back on the same port (the rolling restart), while the load goes on.
      const restartStarted = performance.now();
      instances[1] = await startServerProcess(env, target.port);
      const restartMs = performance.now() - restartStarted;
      await load;
      expect(done).toBe(total);
      latencies.sort((a, b) => a - b);
      console.log(
        `[fault: rolling restart] ${done}/${total} sign-ins completed across 3 instances, 0 lost; ${retries} connection attempts moved to another instance\n` +
          `  SIGTERM: realtime closed with ${closeCode} after ${socketClosedMs.toFixed(0)} ms; the request in flight finished ${finished.status}; ` +
          `exit ${exitCode} after ${exitMs.toFixed(0)} ms; restarted in ${restartMs.toFixed(0)} ms; sign-in p50 ${latencies[Math.floor(total / 2)]!.toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms`,
      );
    },
    180_000,
  );
});
