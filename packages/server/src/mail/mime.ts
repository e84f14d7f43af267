import { randomBytes } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { encodeWords, foldLines, isPlainText, quoteString } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';

/**
 * The sign-in email as one MIME message (RFC 5322 + 2045-2049): a multipart/alternative with a
 * plain-text and an HTML part, both UTF-8 in quoted-printable.
 *
 * Built here rather than by nodemailer's MailComposer because a sign-in email always has this one
 * shape, and the general composer (a MIME tree of streams, address parsing for every field, a
 * plugin chain) cost about 0.4 ms of CPU per message, a fifth of the server's CPU per sign-in. The
 * encoders are nodemailer's own (quoted-printable, RFC 2047 encoded words, line folding), so the
 * bytes follow the same rules; `mime.test.ts` parses the result with mailparser.
 */
export interface MimeMessage {
  /** `Name <address>` or a bare address (MAIL_FROM), parsed once by `parseSender`. */
  from: Sender;
  /** One recipient; Hallpass's addresses are ASCII (shared/email.ts), so no encoding is needed. */
  to: string;
  subject: string;
  text: string;
  html: string;
  /**
   * The same for every attempt at one outbox row, so a repeat delivery (a process killed after the
   * relay accepted the mail, before it was recorded as sent) is recognisable as a duplicate.
   */
  messageId: string;
  /** The Date header: when the outbox handed it over (its clock). */
  date: Date;
}

export interface Sender {
  /** The From header's value, already encoded. */
  header: string;
  /** The envelope's MAIL FROM address. */
  address: string;
}

/** Parses MAIL_FROM once ("Shop <login@shop.example.com>" or "login@shop.example.com"). */
export function parseSender(from: string): Sender {
  const [first] = addressparser(from, { flatten: true });
  const address = first?.address;
  if (!address) throw new Error(`MAIL_FROM is not an address: ${from}`);
  const name = first.name?.replace(/[\r\n]+/g, ' ');
  if (!name) return { header: address, address };
  // A plain name with specials is quoted; a name with non-ASCII characters becomes encoded words.
  const encoded = !isPlainText(name) ? encodeWords(name, 'Q', 52) : /^[\w ]*$/.test(name) ? name : quoteString(name);
  return { header: `${encoded} <${address}>`, address };
}

export function composeMessage(m: MimeMessage): Buffer {
  // "=_" never occurs in quoted-printable output ("=" only starts an escape or a soft break), so
  // this boundary cannot collide with either part, whatever the text holds.
  const boundary = `=_hallpass_${randomBytes(12).toString('hex')}`;
  // A line break in a header value would start a header of its own: never let one through.
  const oneLine = m.subject.replace(/[\r\n]+/g, ' ');
  const subject = isPlainText(oneLine) ? oneLine : encodeWords(oneLine, 'Q', 52);
  const headers = [
    `From: ${m.from.header}`,
    `To: ${m.to}`,
    foldLines(`Subject: ${subject}`, 76),
    `Message-ID: ${m.messageId}`,
    `Date: ${m.date.toUTCString().replace(/GMT$/, '+0000')}`,
    'MIME-Version: 1.0',
    // Folded: on one line the header would pass RFC 5322's 78 characters.
    `Content-Type: multipart/alternative;\r\n boundary="${boundary}"`,
  ];
  return Buffer.from(
    [
      ...headers,
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      quotedPrintable(m.text),
      `--${boundary}`,
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      quotedPrintable(m.html),
      `--${boundary}--`,
      '',
    ].join('\r\n'),
    'latin1', // quoted-printable and the headers are 7-bit by now
  );
}

/** Line breaks as CRLF (hard breaks in quoted-printable), lines wrapped at 76 with soft breaks. */
function quotedPrintable(body: string): string {
  return qpWrap(qpEncode(body.replace(/\r?\n/g, '\r\n')), 76);
}
