import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server on a free loopback port (or `port`) that parses what it receives. `refuseFirst`
 * answers the first N deliveries with a temporary failure (451), as a struggling mail relay would.
 * `received` can be handed to a new sink on the same port (an outage: close, then start again).
 */
export async function startSmtpSink(options: { refuseFirst?: number; port?: number; received?: ParsedMail[] } = {}) {
  const received: ParsedMail[] = options.received ?? [];
  const waiters: Array<{ to: string; resolve: (m: ParsedMail) => void }> = [];
  let refusals = options.refuseFirst ?? 0;
  let attempts = 0;
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    // Pooled client connections are cut shortly after close, not after the default 30 s.
    closeTimeout: 200,
    onData(stream, _session, callback) {
      attempts++;
      if (refusals > 0) {
        refusals--;
        stream.resume();
        stream.on('end', () => callback(Object.assign(new Error('try again later'), { responseCode: 451 })));
        return;
      }
      simpleParser(stream).then(
        (mail) => {
          received.push(mail);
          const to = (Array.isArray(mail.to) ? mail.to[0] : mail.to)?.value[0]?.address ?? '';
          for (const w of waiters.filter((w) => w.to === to)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(mail);
          }
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  // A client that dies mid-session (a killed server process) resets its connection: not our error.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    received,
    get attempts() {
      return attempts;
    },
    /** Resolves with the first mail to `to`, already received or still to come. */
    waitFor(to: string): Promise<ParsedMail> {
      const have = received.find((m) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address === to);
      if (have) return Promise.resolve(have);
      return new Promise((resolve) => waiters.push({ to, resolve }));
    },
    /** Stops listening and drops open connections (as a relay that went down). */
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
