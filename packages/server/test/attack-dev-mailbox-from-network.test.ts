import { networkInterfaces } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

// Attack (issue 9, finding 9): the dev mailbox lists everyone's sign-in codes. A server started with
// HOST=0.0.0.0 and no SMTP answered it to anyone on the network.

/** This machine's address on a real network interface: requests to it arrive from a non-loopback peer. */
const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe('attack: reading the dev mailbox from the network', () => {
  describe('refusing to start', () => {
    it('refuses to start with the dev mailbox on by default when bound beyond loopback', () => {
      for (const HOST of ['0.0.0.0', '::', '192.0.2.2', 'hallpass.internal']) {
        expect(() => loadConfig({ HOST })).toThrow(ConfigError);
        expect(() => loadConfig({ HOST })).toThrow(/DEV_MAILBOX/);
      }
    });

    it('starts when the mailbox is off, bound to loopback, or switched on explicitly', () => {
      expect(loadConfig({ HOST: '0.0.0.0', SMTP_URL: 'smtp://mail.example.com' }).mail.devMailbox).toBe(false);
      expect(loadConfig({ HOST: '0.0.0.0', DEV_MAILBOX: 'off' }).mail.devMailbox).toBe(false);
      for (const HOST of ['127.0.0.1', 'localhost', '::1']) expect(loadConfig({ HOST }).mail.devMailbox).toBe(true);
      expect(loadConfig({ HOST: '0.0.0.0', DEV_MAILBOX: 'on' }).mail.devMailbox).toBe(true);
    });
  });

  describe.skipIf(!lanAddress)('bound to every interface with the dev mailbox switched on explicitly', () => {
    let server: TestServer;
    const lines: string[] = [];
    beforeAll(async () => {
      const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
      server = await startTestServer({
        env: { HOST: '0.0.0.0', DEV_MAILBOX: 'true', TRUST_PROXY: 'true' },
        log: pino({ level: 'warn' }, sink),
      });
    });
    afterAll(() => server?.stop());

    const port = () => new URL(server.url).port;

    it('logs a warning at start', () => {
      const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
      expect(warnings.some((w) => /DEV_MAILBOX/.test(w.msg))).toBe(true);
    });

    it('answers 403 forbidden to a caller on the network, even one claiming loopback in X-Forwarded-For, and shows no code', async () => {
      const email = uniqueEmail('victim');
      const sent = await server.browser().post('/api/auth/passwordless/send', { email });
      expect(sent.status).toBe(200);
      const { code } = await server.latestMail(email); // from loopback: allowed
      expect(code).toMatch(/^\d{6}$/);

      for (const path of ['/dev/mailbox', '/dev/mailbox/messages', `/dev/mailbox/messages?to=${encodeURIComponent(email)}`]) {
        const spoofs: Array<Record<string, string>> = [{}, { 'x-forwarded-for': '127.0.0.1' }, { 'x-forwarded-for': '::1, 127.0.0.1' }];
        for (const headers of spoofs) {
          const res = await fetch(`http://${lanAddress}:${port()}${path}`, { headers });
          const text = await res.text();
          expect({ path, headers, status: res.status }).toEqual({ path, headers, status: 403 });
          expect(JSON.parse(text).error.code).toBe('forbidden');
          expect(text).not.toContain(code!);
        }
      }
    });

    it('still answers on loopback', async () => {
      const res = await fetch(`http://127.0.0.1:${port()}/dev/mailbox/messages`);
      expect(res.status).toBe(200);
    });
  });
});
