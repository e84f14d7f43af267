import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Db } from '@hallpass/db';

export interface OutgoingMail {
  to: string;
  from: string;
  subject: string;
  text: string;
  html: string;
  /**
   * The same for every attempt at one outbox row, so a repeat delivery (a process killed after the
   * relay accepted the mail, before it was recorded as sent) is recognisable as a duplicate.
   */
  messageId?: string;
  /** For the dev mailbox only; never logged. */
  code: string | null;
  link: string | null;
}

/** Where mail goes. `send` throws when delivery failed; the outbox then retries later. */
export interface MailTransport {
  readonly kind: 'smtp' | 'dev-mailbox';
  send(mail: OutgoingMail): Promise<void>;
  close(): Promise<void>;
}

/** Real SMTP through nodemailer (pooled connections). */
export function createSmtpTransport(smtpUrl: string): MailTransport {
  const transporter = nodemailer.createTransport(smtpUrl.includes('pool=') ? smtpUrl : withPool(smtpUrl));
  return {
    kind: 'smtp',
    async send(mail) {
      // Composed to one buffer first: streamed straight into the connection, the MIME tree reaches
      // the socket in a dozen small writes, each a system call.
      const node = new MailComposer({
        to: mail.to,
        from: mail.from,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        ...(mail.messageId ? { messageId: mail.messageId } : {}),
      }).compile();
      await transporter.sendMail({ envelope: node.getEnvelope(), raw: await node.build() });
    },
    async close() {
      transporter.close();
    },
  };
}

function withPool(url: string): string {
  const u = new URL(url);
  u.searchParams.set('pool', 'true');
  return u.toString();
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
