import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, testBackend } from '@hallpass/db/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { startSmtpSink } from './smtp-sink.ts';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer, TestBrowser } from './harness.ts';

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

describe('restart', () => {
  it('keeps sessions and sends mail that was queued during an SMTP outage', async () => {
    const sink = await startSmtpSink();
    cleanup.push(sink.close);
    const outbox = { baseBackoffMs: 20 };
    let server: TestServer = await startTestServer({ outbox });
    const browser = server.browser();
    const { user } = await signInWithCode(server, browser, uniqueEmail());

    // Second life: SMTP is down (nothing listens on port 9), so the mail stays queued.
    server = await server.restart({ env: { SMTP_URL: 'smtp://127.0.0.1:9', DEV_MAILBOX: 'false' }, outbox });
    const queued = uniqueEmail();
    expect((await server.browser().post('/api/auth/passwordless/send', { email: queued })).status).toBe(200);

    // Third life: SMTP is back; the queued mail goes out without anyone asking again.
    server = await server.restart({ env: { SMTP_URL: sink.url, DEV_MAILBOX: 'false' }, outbox });
    cleanup.push(() => server.stop());
    const mail = await sink.waitFor(queued);
    expect(mail.subject).toMatch(/\d{6}/);

    // The cookies from the first life still work: signing keys and sessions persisted.
    const again = new TestBrowser(server.url, browser.origin);
    for (const [k, v] of browser.cookies) again.cookies.set(k, v);
    const session = await again.get('/api/auth/session');
    expect(session.status).toBe(200);
    expect(session.body.user.id).toBe(user.id);
  }, 90_000);

  it.runIf(testBackend() === 'postgres')('sends mail enqueued by a server that was killed (SIGKILL) before delivering it', async () => {
    const t = await createTestDatabase();
    cleanup.push(t.drop);
    const sink = await startSmtpSink();
    cleanup.push(sink.close);
    const env = {
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: t.url!,
      HALLPASS_SECRET: 'a-test-secret-that-is-long-enough-for-hallpass',
      HALLPASS_DATA_DIR: mkdtempSync(join(tmpdir(), 'hallpass-kill-')),
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      // A killed worker's claimed mail is taken again after its lease; keep the lease short here.
      MAIL_LEASE_SECONDS: '5',
    };
    const start = async (smtp: string, port: number): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [fileURLToPath(new URL('../../cli/bin/hallpass.js', import.meta.url)), 'serve'], {
        env: { ...env, SMTP_URL: smtp, PORT: String(port) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      while (!out.includes('listening')) await once(child.stdout!, 'data');
      return child;
    };
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const first = await start('smtp://127.0.0.1:9', port);
    const email = uniqueEmail();
    const res = await fetch(`http://127.0.0.1:${port}/api/auth/passwordless/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email }),
    });
    expect(res.status).toBe(200);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const second = await start(sink.url, port);
    cleanup.push(async () => void second.kill('SIGTERM'));
    const mail = await sink.waitFor(email);
    expect(mail.subject).toMatch(/\d{6}/);
    const { rm } = await import('node:fs/promises');
    await rm(env.HALLPASS_DATA_DIR, { recursive: true, force: true });
  }, 90_000);
});
