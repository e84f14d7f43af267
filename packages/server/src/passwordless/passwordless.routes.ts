import { Hono } from 'hono';
import { html } from 'hono/html';
import { z } from 'zod';
import type { ErrorCode } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { clientIp, requestLog, type AppContext, type AppEnv } from '../http/context.ts';
import { readBindingCookie, setBindingCookie, setSessionCookies } from '../http/cookies.ts';
import { emailField, readJson } from '../http/json.ts';
import { page } from '../http/page.ts';
import { cspNonce } from '../http/security.ts';
import { resolveAllowedRedirect } from '../http/redirects.ts';
import { toUser } from '../profiles/profiles.repository.ts';
import { AppError } from '../shared/errors.ts';
import {
  previewLink,
  resendPasswordless,
  sendPasswordless,
  verifyCode,
  verifyLink,
  type RequestContext,
  type Verified,
} from './passwordless.service.ts';

const sendBody = z.strictObject({
  email: emailField,
  state: z.string().max(1024).optional(),
  redirectTo: z.string().max(2048).optional(),
  /** The tenant's slug; else the host's tenant (TENANT_HOSTS), else the default tenant. */
  tenant: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/).optional(),
});
const authRequestId = z.uuid();
const verifyBody = z.union([
  z.strictObject({ authRequestId, code: z.string().regex(/^\d{6}$/, 'a 6-digit code') }),
  z.strictObject({ linkToken: z.string().min(16).max(128) }),
]);
const resendBody = z.strictObject({ authRequestId });
const linkToken = z.string().regex(/^[A-Za-z0-9_-]{16,128}$/);

function requestContext(c: AppContext, deps: Pick<Deps, 'config'>): RequestContext {
  return {
    ip: clientIp(c, deps.config),
    userAgent: c.req.header('user-agent') ?? null,
    binding: readBindingCookie(c, deps.config),
  };
}

function signedIn(c: AppContext, deps: Pick<Deps, 'config' | 'log' | 'metrics'>, v: Verified) {
  setSessionCookies(c, deps.config, v.issued);
  deps.metrics.signedIn(v.created);
  requestLog(c, deps.log).info({ profileId: v.profile.id, sessionId: v.issued.session.id, created: v.created }, 'signed in');
}

/** The passwordless JSON API (`/api/auth/passwordless/*`) and the magic-link confirm page. */
export function passwordlessRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  app.post('/api/auth/passwordless/send', async (c) => {
    const body = await readJson(c, sendBody);
    // Checked (and normalised) now, so a bad target is refused before any mail goes out, and only the
    // resolved URL is stored.
    const redirectTo = body.redirectTo === undefined ? undefined : resolveAllowedRedirect(deps.config, body.redirectTo);
    if (redirectTo === null) throw new AppError('invalid_redirect');
    const tenant = body.tenant ?? hostTenant(deps, new URL(c.req.url).hostname);
    const result = await deps.metrics.outcome('send', sendPasswordless(deps, { ...body, redirectTo, tenant }, requestContext(c, deps)));
    if (result.binding) setBindingCookie(c, deps.config, result.binding, result.response.expiresIn + 60);
    return c.json(result.response);
  });

  app.post('/api/auth/passwordless/resend', async (c) => {
    const body = await readJson(c, resendBody);
    return c.json(await resendPasswordless(deps, body.authRequestId, requestContext(c, deps)));
  });

  app.post('/api/auth/passwordless/verify', async (c) => {
    const body = await readJson(c, verifyBody);
    const ctx = requestContext(c, deps);
    const verified = await deps.metrics.outcome('verify', 'code' in body ? verifyCode(deps, body, ctx) : verifyLink(deps, body.linkToken, ctx));
    signedIn(c, deps, verified);
    return c.json({ user: toUser(verified.profile), state: verified.state });
  });

  // GET only shows a page: mail scanners and link previews open links, and must neither sign
  // anyone in nor use the link up. Only the person's press of the button (a POST) consumes it.
  app.get('/passwordless/verify', async (c) => {
    const token = linkToken.safeParse(c.req.query('link_token'));
    if (!token.success) return linkErrorPage(c, 'link_invalid');
    const preview = await previewLink(deps, token.data, requestContext(c, deps));
    if (!preview.ok) return linkErrorPage(c, preview.code);
    const nonce = cspNonce(c);
    return c.html(
      page({
        title: 'Continue signing in',
        nonce,
        body: html`<main>
  <h1>Continue signing in</h1>
  <p>Sign in as <strong>${preview.email}</strong> in this browser.</p>
  <form method="post" action="/passwordless/verify">
    <input type="hidden" name="link_token" value="${token.data}">
    <button type="submit" autofocus>Continue</button>
  </form>
  <p class="muted">If you did not ask to sign in, close this page. Nothing happens until you continue.</p>
</main>`,
      }),
    );
  });

  app.post('/passwordless/verify', async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const token = linkToken.safeParse(form['link_token']);
    if (!token.success) return linkErrorPage(c, 'link_invalid');
    let verified: Verified;
    try {
      verified = await deps.metrics.outcome('verify', verifyLink(deps, token.data, requestContext(c, deps)));
    } catch (err) {
      if (err instanceof AppError) return linkErrorPage(c, err.code);
      throw err;
    }
    signedIn(c, deps, verified);
    // Checked again: the allow-list may have shrunk since the send, and rows stored before this check
    // existed may hold raw input.
    const target = (verified.redirectTo ? resolveAllowedRedirect(deps.config, verified.redirectTo) : null) ?? '/';
    return c.redirect(target, 303);
  });

  return app;
}

/** The tenant slug configured for the request's host name (TENANT_HOSTS), if any. */
function hostTenant(deps: Pick<Deps, 'config'>, hostname: string): string | undefined {
  return Object.hasOwn(deps.config.tenantHosts, hostname) ? deps.config.tenantHosts[hostname] : undefined;
}

const linkMessages: Partial<Record<ErrorCode, { title: string; text: string }>> = {
  link_invalid: { title: 'This link does not work', text: 'The link is not valid. Ask for a new sign-in email.' },
  link_expired: { title: 'This link has expired', text: 'Sign-in links work for a few minutes only. Ask for a new one.' },
  auth_request_used: { title: 'This link was already used', text: 'Each link signs in once. Ask for a new one if you need to sign in again.' },
  too_many_attempts: { title: 'This sign-in is locked', text: 'Too many wrong codes were tried. Ask for a new sign-in email.' },
  different_browser: {
    title: 'Open this link in the same browser',
    text: 'For your safety this link only works in the browser where you asked for it. Open it there, or ask for a new email from this browser.',
  },
};

function linkErrorPage(c: AppContext, code: ErrorCode) {
  const m = linkMessages[code] ?? linkMessages.link_invalid!;
  const status = code === 'link_expired' ? 410 : code === 'different_browser' ? 403 : code === 'too_many_attempts' ? 429 : code === 'auth_request_used' ? 409 : 400;
  return c.html(
    page({
      title: m.title,
      nonce: cspNonce(c),
      body: html`<main data-error-code="${code}">
  <h1>${m.title}</h1>
  <p>${m.text}</p>
  <a class="button" href="/">Back to sign in</a>
</main>`,
    }),
    status,
  );
}
