import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server on a free loopback port that parses what it receives. `refuseFirst` answers the
 * first N deliveries with a temporary failure (451), as a struggling mail relay would.
 */
export async function startSmtpSink(options: { refuseFirst?: number } = {}) {
  const received: ParsedMail[] = [];
  const waiters: Array<{ to: string; resolve: (m: ParsedMail) => void }> = [];
  let refusals = options.refuseFirst ?? 0;
  let attempts = 0;
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
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
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
