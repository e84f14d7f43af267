import type { ParsedMail } from 'mailparser';
import { afterAll, describe, expect, it } from 'vitest';
import { startSmtpSink } from './smtp-sink.ts';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

const recipient = (m: ParsedMail) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address ?? '';

describe('fault: SMTP down while sign-ins continue', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it('delivers every mail queued during the outage once the relay is back, none twice, and the codes sign in', async () => {
    const received: ParsedMail[] = [];
    let sink = await startSmtpSink({ received });
    const server: TestServer = await startTestServer({
      env: { SMTP_URL: sink.url, DEV_MAILBOX: 'false', RATE_LIMIT_IP_PER_10_MINUTES: '1000' },
      // Retries start at 50 ms and stay under 1 s, so the test waits on the relay, not on backoff.
      outbox: { baseBackoffMs: 50, maxBackoffMs: 1000, pollMs: 200 },
    });
    cleanup.push(() => server.stop(), () => sink.close());

    // The relay goes away: nothing listens on its port for the outage window.
    await sink.close();
    const outageStarted = performance.now();
    const emails = Array.from({ length: 30 }, () => uniqueEmail('smtp-down'));
    const sends = await Promise.all(emails.map((email) => server.browser().post('/api/auth/passwordless/send', { email })));
    expect(sends.map((s) => s.status)).toEqual(emails.map(() => 200));
    // Wait until the worker has tried and failed at least once per mail: the outage is real.
    const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
    const failures = async () => Number(/^hallpass_mail_delivery_failures_total (\d+)/m.exec(await metrics())?.[1] ?? 0);
    while ((await failures()) < emails.length) await new Promise((r) => setTimeout(r, 50));
    const depthDuring = Number(/^hallpass_mail_outbox_depth (\d+)/m.exec(await metrics())?.[1]);
    expect(received).toHaveLength(0);
    expect(depthDuring).toBe(emails.length);

    // The relay comes back on the same port.
    sink = await startSmtpSink({ received, port: sink.port });
    const outageMs = performance.now() - outageStarted;
    const back = performance.now();
    const mails = await Promise.all(emails.map((e) => sink.waitFor(e)));
    const drainMs = performance.now() - back;
    await server.outbox.drain();

    const perAddress = new Map<string, number>();
    for (const m of received) perAddress.set(recipient(m), (perAddress.get(recipient(m)) ?? 0) + 1);
    expect([...perAddress.values()].every((n) => n === 1)).toBe(true);
    expect(perAddress.size).toBe(emails.length);
    const { rows } = await server.db.query<{ status: string; n: number }>(
      `select status, count(*)::int as n from hallpass.mail_outbox group by status`,
    );
    expect(rows).toEqual([{ status: 'sent', n: emails.length }]);

    // The codes that arrived late still sign in.
    const verified = await Promise.all(
      emails.map((email, i) => {
        const code = /Your code: (\d{6})/.exec(mails[i]!.text ?? '')?.[1];
        return server.browser().post('/api/auth/passwordless/verify', { authRequestId: sends[i]!.body.authRequestId, code });
      }),
    );
    expect(verified.map((v) => v.status)).toEqual(emails.map(() => 200));
    const failed = await failures();
    console.log(
      `[fault: SMTP down] ${emails.length} sends answered 200 during a ${outageMs.toFixed(0)} ms outage; ` +
        `${failed} failed delivery attempts; outbox depth ${depthDuring} during it; all ${received.length} mails ` +
        `arrived ${drainMs.toFixed(0)} ms after the relay came back, 0 twice; ${verified.length} late codes signed in`,
    );
  }, 120_000);
});
