import type { ParsedMail } from 'mailparser';
import { testBackend } from '@hallpass/db/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { processFixture, startServerProcess, type ServerProcess } from './server-process.ts';

const recipient = (m: ParsedMail) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address ?? '';

// A server process on the PostgreSQL backend is killed with SIGKILL in the middle of 200 concurrent
// sign-ins, then started again on the same database and port.
describe.skipIf(testBackend() !== 'postgres')('fault: kill -9 during 200 concurrent sign-ins', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it('leaves nothing half-written, sends every queued mail exactly once, and every session answered 200 still works', async () => {
    const { t, sink, env } = await processFixture(cleanup, {
      // Mail the killed process had leased is taken again after this.
      MAIL_LEASE_SECONDS: '5',
      DATABASE_POOL_SIZE: '20',
    });
    let server: ServerProcess = await startServerProcess(env);
    const base = server.url;
    let restarted!: () => void;
    const backUp = new Promise<void>((resolve) => (restarted = resolve));

    const total = 200;
    const answered = { send: 0, sendLost: 0, verify: 0, verifyLost: 0, retriedVerify: 0, usedOnRetry: 0 };
    const sessions: string[] = [];
    let killAt!: () => void;
    const killNow = new Promise<void>((resolve) => (killAt = resolve));
    const post = (path: string, body: unknown) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    const verify = async (authRequestId: string, code: string) => {
      const res = await post('/api/auth/passwordless/verify', { authRequestId, code });
      if (res.status !== 200) return { status: res.status, cookie: null };
      return { status: 200, cookie: res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') };
    };
    const signIn = async (i: number) => {
      const email = `kill-${i}-${Date.now()}@example.com`;
      let sent: Response;
      try {
        sent = await post('/api/auth/passwordless/send', { email });
      } catch {
        answered.sendLost++;
        return;
      }
      if (sent.status !== 200) throw new Error(`send ${sent.status}`);
      answered.send++;
      const { authRequestId } = (await sent.json()) as { authRequestId: string };
      const mail = await sink.waitFor(email);
      const code = /Your code: (\d{6})/.exec(mail.text ?? '')![1]!;
      let result: { status: number; cookie: string | null };
      try {
        result = await verify(authRequestId, code);
      } catch {
        // The process died under this request: try once more when it is back. A verify that had
        // committed answers auth_request_used (its response was lost with the process).
        answered.verifyLost++;
        await backUp;
        answered.retriedVerify++;
        result = await verify(authRequestId, code);
        if (result.status === 409) answered.usedOnRetry++;
      }
      if (result.status === 200) {
        answered.verify++;
        sessions.push(result.cookie!);
        if (answered.verify === 60) killAt();
      }
    };
    const load = Promise.all(Array.from({ length: total }, (_, i) => signIn(i)));

    // kill -9 once 60 sign-ins have completed: sends, mail and verifies are all in flight then.
    await killNow;
    const killed = await server.stop('SIGKILL');
    const atKill = { ...answered };
    const restartStarted = performance.now();
    server = await startServerProcess(env, server.port);
    cleanup.push(() => server.stop());
    const restartMs = performance.now() - restartStarted;
    restarted();
    await load;

    // Every queued mail leaves the outbox (the dead process's leases run out after 5 s).
    const deadline = Date.now() + 60_000;
    const open = async () =>
      (await t.db.query<{ n: number }>(`select count(*)::int as n from hallpass.mail_outbox where status in ('pending', 'sending')`)).rows[0]!.n;
    while ((await open()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await open()).toBe(0);

    // Nothing half-written: each request has its one mail; each consumed request its profile,
    // session and refresh token; no profile without a session, no session without a token.
    const q = async (sql: string) => (await t.db.query<{ n: number }>(sql)).rows[0]!.n;
    const requests = await q(`select count(*)::int as n from hallpass.auth_requests`);
    expect(await q(`select count(*)::int as n from hallpass.auth_requests r where (select count(*) from hallpass.mail_outbox o where o.auth_request_id = r.id) <> 1`)).toBe(0);
    const consumed = await q(`select count(*)::int as n from hallpass.auth_requests where consumed_at is not null`);
    expect(
      await q(`select count(*)::int as n from hallpass.auth_requests r where r.consumed_at is not null and not exists (
                 select 1 from public.profiles p join hallpass.sessions s on s.profile_id = p.id where p.email = r.email)`),
    ).toBe(0);
    expect(await q(`select count(*)::int as n from public.profiles p where not exists (select 1 from hallpass.sessions s where s.profile_id = p.id)`)).toBe(0);
    expect(await q(`select count(*)::int as n from hallpass.sessions s where not exists (select 1 from hallpass.refresh_tokens t where t.session_id = s.id)`)).toBe(0);
    expect(await q(`select count(*)::int as n from hallpass.sessions`)).toBe(consumed);

    // Every queued mail sent exactly once: one message (one Message-ID) per request. SMTP itself is
    // at-least-once: a mail the relay accepted from the killed process before it could record it as
    // sent is delivered again by the next, under the same Message-ID, so the receiver sees one message.
    const sentRows = await q(`select count(*)::int as n from hallpass.mail_outbox where status = 'sent'`);
    const messages = new Map<string, Set<string>>();
    for (const m of sink.received) messages.set(recipient(m), (messages.get(recipient(m)) ?? new Set()).add(m.messageId ?? ''));
    const repeated = [...messages].filter(([to]) => sink.received.filter((m) => recipient(m) === to).length > 1).map(([to]) => to);
    expect(sentRows).toBe(requests);
    expect(messages.size).toBe(requests);
    expect([...messages.values()].filter((ids) => ids.size !== 1)).toEqual([]);
    // Only mail the killed process held (taken over after its lease: a second attempt) can repeat.
    const takenOver = new Set(
      (await t.db.query<{ to_email: string }>(`select to_email from hallpass.mail_outbox where attempts > 1`)).rows.map((r) => r.to_email),
    );
    expect(repeated.filter((to) => !takenOver.has(to))).toEqual([]);

    // Every session that was answered 200 works on the restarted process.
    const checks = await Promise.all(sessions.map((cookie) => fetch(`${base}/api/auth/session`, { headers: { cookie } }).then((r) => r.status)));
    expect(checks.filter((s) => s !== 200)).toEqual([]);

    console.log(
      `[fault: kill -9] killed after ${atKill.verify} of ${total} sign-ins completed (${atKill.send} sends answered); restart took ${restartMs.toFixed(0)} ms (kill ${killed.ms.toFixed(0)} ms)\n` +
        `  sends answered ${answered.send}, lost with the process ${answered.sendLost}; verifies lost with the process ${answered.verifyLost}, ` +
        `retried ${answered.retriedVerify} (${answered.usedOnRetry} had committed before the kill: auth_request_used)\n` +
        `  auth requests ${requests}, consumed ${consumed}, mails sent ${sentRows} (${takenOver.size} taken over from the killed process), ` +
        `received ${sink.received.length} SMTP deliveries of ${messages.size} distinct messages (${repeated.length} redelivered with the same Message-ID); ` +
        `${sessions.length} sessions answered 200, all ${checks.filter((s) => s === 200).length} still work`,
    );
  }, 180_000);
});
