import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import type { Deps } from '../deps.ts';
import { isLoopbackAddress } from '../http/client-ip.ts';
import { peerAddress, type AppEnv } from '../http/context.ts';
import { page } from '../http/page.ts';
import { cspNonce } from '../http/security.ts';
import { normalizeEmail } from '../shared/email.ts';
import { AppError } from '../shared/errors.ts';

interface MailboxRow {
  to_email: string;
  subject: string;
  text_body: string;
  html_body: string;
  code: string | null;
  link: string | null;
  sent_at: Date;
}

/**
 * The dev mailbox: mounted only when no SMTP is configured and not in production (config enforces
 * it), because it shows sign-in codes to whoever asks. So it answers only callers on this machine,
 * judged by the socket's peer address: never by X-Forwarded-For, which any client can write.
 */
export function devMailboxRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono<AppEnv>();

  const loopbackOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (!isLoopbackAddress(peerAddress(c))) throw new AppError('forbidden', { message: 'The dev mailbox answers only requests from this machine.' });
    await next();
  };
  app.use('/dev/mailbox', loopbackOnly);
  app.use('/dev/mailbox/*', loopbackOnly);

  const read = async (to: string | undefined, limit: number): Promise<MailboxRow[]> => {
    const email = to ? normalizeEmail(to) : null;
    const { rows } = await deps.db.query<MailboxRow>(
      `select to_email, subject, text_body, html_body, code, link, sent_at from hallpass.dev_mailbox
        where ($1::text is null or to_email = $1) order by id desc limit $2`,
      [email ?? (to ? '' : null), limit],
    );
    return rows;
  };

  app.get('/dev/mailbox/messages', async (c) => {
    const rows = await read(c.req.query('to'), 100);
    return c.json({
      messages: rows.map((r) => ({
        to: r.to_email,
        subject: r.subject,
        text: r.text_body,
        html: r.html_body,
        code: r.code,
        link: r.link,
        sentAt: r.sent_at.toISOString(),
      })),
    });
  });

  app.get('/dev/mailbox', async (c) => {
    const rows = await read(c.req.query('to'), 50);
    return c.html(
      page({
        title: 'Dev mailbox',
        nonce: cspNonce(c),
        body: html`<main class="wide">
  <h1>Dev mailbox</h1>
  <p class="muted">Mail the server would have sent. Shown only in development with no SMTP configured. <a href="/dev/mailbox">Refresh</a></p>
  ${rows.length === 0
    ? html`<p>No mail yet. Ask for a sign-in code on <a href="/">the sign-in page</a>.</p>`
    : html`<table>
    <thead><tr><th>To</th><th>Subject</th><th>Code</th><th>Link</th><th>Sent</th></tr></thead>
    <tbody>
    ${rows.map(
      (r) => html`<tr>
      <td>${r.to_email}</td><td>${r.subject}</td>
      <td>${r.code ? html`<code>${r.code}</code>` : ''}</td>
      <td>${r.link ? html`<a href="${r.link}">Open sign-in link</a>` : ''}</td>
      <td>${r.sent_at.toISOString()}</td>
    </tr>`,
    )}
    </tbody></table>`}
</main>`,
      }),
    );
  });

  return app;
}
