import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { composeMessage, parseSender } from './mime.ts';
import { renderSignInMail } from './templates.ts';

const date = new Date('2026-11-28T12:00:00Z');

async function roundTrip(overrides: { from?: string; subject?: string; text?: string; html?: string } = {}) {
  const rendered = renderSignInMail({ kind: 'SIGNIN', code: '042917', link: 'https://shop.example.com/api/auth/passwordless/verify?link_token=' + 'x'.repeat(43), expiresInMinutes: 5, appName: 'Shop' });
  const raw = composeMessage({
    from: parseSender(overrides.from ?? 'Shop <login@shop.example.com>'),
    to: 'ada@example.com',
    subject: overrides.subject ?? rendered.subject,
    text: overrides.text ?? rendered.text,
    html: overrides.html ?? rendered.html,
    messageId: '<req-1.7@hallpass.test>',
    date,
  });
  return { raw: raw.toString('latin1'), mail: await simpleParser(raw), rendered };
}

describe('the sign-in email as MIME', () => {
  it('parses back to the same headers, text and HTML a mail client shows', async () => {
    const { raw, mail, rendered } = await roundTrip();
    expect(mail.from?.value).toEqual([{ name: 'Shop', address: 'login@shop.example.com' }]);
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value : []).toEqual([{ name: '', address: 'ada@example.com' }]);
    expect(mail.subject).toBe(rendered.subject);
    expect(mail.messageId).toBe('<req-1.7@hallpass.test>');
    expect(mail.date?.toISOString()).toBe(date.toISOString());
    expect(mail.text?.trimEnd()).toBe(rendered.text);
    expect(mail.html).toBe(rendered.html);
    // 7-bit on the wire, no line longer than RFC 5322's 78 characters.
    expect(raw).toMatch(/^[\x00-\x7f]*$/);
    expect(Math.max(...raw.split('\r\n').map((l) => l.length))).toBeLessThanOrEqual(78);
  });

  it('encodes non-ASCII names, subjects and bodies and keeps them intact', async () => {
    const { raw, mail } = await roundTrip({ from: '"Café Ünïcode, Ltd" <login@shop.example.com>', subject: '042917 est votre code Café 🎄', text: 'Grüße — 042917\n.\n..leading dots' });
    expect(mail.from?.value[0]).toEqual({ name: 'Café Ünïcode, Ltd', address: 'login@shop.example.com' });
    expect(mail.subject).toBe('042917 est votre code Café 🎄');
    expect(mail.text?.trimEnd()).toBe('Grüße — 042917\n.\n..leading dots');
    expect(raw).toMatch(/^[\x00-\x7f]*$/);
  });

  it('header injection: a line break in the subject or the sender name never starts a header of its own', async () => {
    const { mail } = await roundTrip({ from: '"Shop\r\nBcc: victim@example.com" <login@shop.example.com>', subject: 'code\r\nBcc: attacker@example.com' });
    expect(mail.headers.has('bcc')).toBe(false);
    expect(mail.subject).toBe('code Bcc: attacker@example.com');
  });

  it('refuses a MAIL_FROM that holds no address', () => {
    expect(() => parseSender('Just a name')).toThrow(/MAIL_FROM/);
  });
});
