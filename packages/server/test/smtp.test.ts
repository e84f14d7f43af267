import { afterAll, describe, expect, it } from 'vitest';
import { startSmtpSink } from './smtp-sink.ts';
import type { MailTransport } from '../src/mail/transports.ts';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function serverWithSmtp(smtpUrl: string): Promise<TestServer> {
  const server = await startTestServer({
    env: { SMTP_URL: smtpUrl, DEV_MAILBOX: 'false', MAIL_FROM: 'Shop <login@shop.example.com>' },
    outbox: { baseBackoffMs: 20, pollMs: 50 },
  });
  cleanup.push(() => server.stop());
  return server;
}

describe('mail over SMTP', () => {
  it('delivers the sign-in email with code and link, HTML and text, through a real SMTP server', async () => {
    const sink = await startSmtpSink();
    cleanup.push(sink.close);
    const server = await serverWithSmtp(sink.url);
    const email = uniqueEmail();
    const browser = server.browser();
    const sent = await browser.post('/api/auth/passwordless/send', { email });
    expect(sent.status).toBe(200);
    const mail = await sink.waitFor(email);
    expect(mail.from?.text).toContain('login@shop.example.com');
    const code = /Your code: (\d{6})/.exec(mail.text ?? '')?.[1];
    expect(code).toMatch(/^\d{6}$/);
    expect(mail.subject).toContain(code);
    expect(mail.html).toContain(code);
    expect(mail.text).toMatch(/\/passwordless\/verify\?link_token=[\w-]{43}/);
    // The dev mailbox is off once SMTP is configured.
    expect((await browser.get('/dev/mailbox/messages')).status).toBe(404);
    const verified = await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code });
    expect(verified.status).toBe(200);
  });

  it('retries with backoff when the SMTP server refuses the first attempts, and the mail still arrives', async () => {
    const sink = await startSmtpSink({ refuseFirst: 2 });
    cleanup.push(sink.close);
    const server = await serverWithSmtp(sink.url);
    const email = uniqueEmail();
    const sent = await server.browser().post('/api/auth/passwordless/send', { email });
    expect(sent.status).toBe(200);
    const mail = await sink.waitFor(email);
    expect(mail.subject).toMatch(/\d{6}/);
    expect(sink.attempts).toBe(3);
    await server.outbox.drain();
    const { rows } = await server.db.query<{ status: string; attempts: number; payload: unknown }>(
      'select status, attempts, payload from hallpass.mail_outbox where to_email = $1',
      [email],
    );
    expect(rows).toEqual([{ status: 'sent', attempts: 3, payload: null }]);
  });
});

describe('mail outbox', () => {
  it('sends mail queued behind a slow delivery without waiting for it', async () => {
    const slow = uniqueEmail('slow');
    const quick = uniqueEmail('quick');
    const delivered: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let slowStarted!: () => void;
    const slowStarting = new Promise<void>((r) => (slowStarted = r));
    let quickArrived!: () => void;
    const quickArriving = new Promise<void>((r) => (quickArrived = r));
    // A relay that takes its time over one message, as a real one sometimes does.
    const mailer: MailTransport = {
      kind: 'smtp',
      async send(mail) {
        if (mail.to === slow) (slowStarted(), await held);
        delivered.push(mail.to);
        if (mail.to === quick) quickArrived();
      },
      async close() {},
    };
    const server = await startTestServer({ mailer });
    cleanup.push(() => server.stop());

    expect((await server.browser().post('/api/auth/passwordless/send', { email: slow })).status).toBe(200);
    await slowStarting;
    expect((await server.browser().post('/api/auth/passwordless/send', { email: quick })).status).toBe(200);
    await quickArriving;
    expect(delivered).toEqual([quick]);

    release();
    await server.outbox.drain();
    expect(delivered).toEqual([quick, slow]);
    const { rows } = await server.db.query<{ status: string }>('select status from hallpass.mail_outbox where to_email = any($1) order by id', [[slow, quick]]);
    expect(rows.map((r) => r.status)).toEqual(['sent', 'sent']);
  });
});
