import { html } from 'hono/html';

export type TemplateKind = 'SIGNIN' | 'SIGNUP';

export interface SignInMailInput {
  kind: TemplateKind;
  code: string | null;
  link: string | null;
  expiresInMinutes: number;
  /** The product name in subject and body (template variable `app_name`). */
  appName: string;
  /** A line of the caller's own above the code (template variable `greeting`). */
  greeting?: string;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/**
 * The sign-in (returning user) and sign-up (first login) emails, HTML and plain text. Every value is
 * escaped in the HTML (hono's `html` tag), including the caller's template variables.
 */
export function renderSignInMail(m: SignInMailInput): RenderedMail {
  const signup = m.kind === 'SIGNUP';
  const subject = m.code
    ? `${m.code} is your ${m.appName} ${signup ? 'sign-up' : 'sign-in'} code`
    : `Your ${m.appName} ${signup ? 'sign-up' : 'sign-in'} link`;
  const greeting = m.greeting ?? (signup ? `Welcome to ${m.appName}! Confirm your email to finish signing up.` : `Sign in to ${m.appName}.`);
  const validity = `It works once and expires in ${m.expiresInMinutes} minute${m.expiresInMinutes === 1 ? '' : 's'}.`;
  const ignore = `If you did not ask for this, ignore this email: nobody can sign in without it.`;

  const text = [
    greeting,
    '',
    ...(m.code ? [`Your code: ${m.code}`, ''] : []),
    ...(m.link ? [`${m.code ? 'Or open this link' : 'Open this link'}: ${m.link}`, ''] : []),
    validity,
    ignore,
  ].join('\n');

  const body = html`<!doctype html>
<html lang="en">
  <body style="margin:0;padding:24px;background:#f6f7f9;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2328">
    <table role="presentation" width="100%" style="max-width:480px;margin:0 auto;background:#fff;border-radius:12px;padding:32px">
      <tr><td>
        <h1 style="font-size:20px;margin:0 0 16px">${greeting}</h1>
        ${m.code
          ? html`<p style="margin:0 0 8px">Your code:</p>
        <p style="font-size:32px;letter-spacing:8px;font-weight:700;margin:0 0 24px;font-family:ui-monospace,monospace">${m.code}</p>`
          : ''}
        ${m.link
          ? html`<p style="margin:0 0 24px"><a href="${m.link}" style="display:inline-block;background:#0f62fe;color:#fff;padding:12px 20px;border-radius:8px;text-decoration:none">${signup ? 'Confirm and sign in' : 'Sign in'}</a></p>`
          : ''}
        <p style="color:#57606a;font-size:14px;margin:0 0 8px">${validity}</p>
        <p style="color:#57606a;font-size:14px;margin:0">${ignore}</p>
      </td></tr>
    </table>
  </body>
</html>`;
  return { subject, text, html: body.toString() };
}
