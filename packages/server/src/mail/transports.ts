import type { Db } from '@hallpass/db';
import { composeMessage, parseSender, type MimeMessage } from './mime.ts';
import { createSmtpPool } from './smtp-pool.ts';

/** One sign-in email as the outbox hands it to a transport (the sender is the transport's). */
export interface OutgoingMail extends Omit<MimeMessage, 'from'> {
  /** For the dev mailbox only; never logged. */
  code: string | null;
  link: string | null;
}

/** Where mail goes. `send` throws when delivery failed; the outbox then retries later. */
export interface MailTransport {
  readonly kind: 'smtp' | 'dev-mailbox' | 'capture';
  send(mail: OutgoingMail): Promise<void>;
  close(): Promise<void>;
}

/**
 * Real SMTP: the message composed once (mime.ts), sent over a small pool of nodemailer
 * SMTPConnections (smtp-pool.ts). `SMTP_URL` takes nodemailer's URL form: smtp:// or smtps://,
 * user:password@, and query options such as `tls.rejectUnauthorized`, `requireTLS`,
 * `maxConnections` and `maxMessages`.
 */
export function createSmtpTransport(smtpUrl: string, from: string): MailTransport {
  const pool = createSmtpPool(smtpUrl);
  const sender = parseSender(from);
  return {
    kind: 'smtp',
    async send(mail) {
      const message = composeMessage({ ...mail, from: sender });
      await pool.send({ from: sender.address, to: [mail.to] }, message);
    },
    close: () => pool.close(),
  };
}

/**
 * Development without SMTP: messages land in a table that `/dev/mailbox` shows, and the code and
 * link are printed to the console so a developer can sign in straight away.
 */
export function createDevMailboxTransport(db: Db, print: (line: string) => void): MailTransport {
  return {
    kind: 'dev-mailbox',
    async send(mail) {
      await db.query(
        `insert into hallpass.dev_mailbox (to_email, subject, text_body, html_body, code, link) values ($1, $2, $3, $4, $5, $6)`,
        [mail.to, mail.subject, mail.text, mail.html, mail.code, mail.link],
      );
      print(`[dev mailbox] to ${mail.to}:${mail.code ? ` code ${mail.code}` : ''}${mail.link ? ` link ${mail.link}` : ''}`);
    },
    async close() {},
  };
}
