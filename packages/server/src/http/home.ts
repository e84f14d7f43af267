import { Hono } from 'hono';
import { html } from 'hono/html';
import type { Deps } from '../deps.ts';
import type { AppEnv } from './context.ts';
import { page } from './page.ts';
import { cspNonce } from './security.ts';

// A small built-in sign-in page so `npm start` is usable before any app is built on top. It talks
// to the same JSON API an app would.
const script = String.raw`
const $ = (id) => document.getElementById(id);
let requestId = null;
const show = (id) => { for (const s of ['email-step', 'code-step', 'signed-in']) $(s).hidden = s !== id; };
const fail = (el, err) => { el.textContent = err.message + (err.attemptsRemaining !== undefined ? ' (' + err.attemptsRemaining + ' tries left)' : ''); };
async function api(path, body, method = 'POST') {
  const res = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' });
  if (res.status === 204) return null;
  const data = await res.json();
  if (!res.ok) throw Object.assign(new Error(data.error.message), data.error);
  return data;
}
async function refresh() {
  try {
    const { profile } = await api('/api/profile', null, 'GET');
    $('who').textContent = profile.email;
    $('name').value = profile.name ?? '';
    show('signed-in');
  } catch { show('email-step'); }
}
$('email-form').addEventListener('submit', async (e) => {
  e.preventDefault(); $('email-error').textContent = '';
  try {
    const r = await api('/api/auth/passwordless/send', { email: $('email').value });
    requestId = r.authRequestId; show('code-step'); $('code').focus();
  } catch (err) { fail($('email-error'), err); }
});
$('code-form').addEventListener('submit', async (e) => {
  e.preventDefault(); $('code-error').textContent = '';
  try { await api('/api/auth/passwordless/verify', { authRequestId: requestId, code: $('code').value.trim() }); await refresh(); }
  catch (err) { fail($('code-error'), err); }
});
$('profile-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try { await api('/api/profile', { name: $('name').value }, 'PATCH'); $('saved').textContent = 'Saved.'; }
  catch (err) { fail($('saved'), err); }
});
$('logout').addEventListener('click', async () => { await api('/api/auth/logout'); show('email-step'); });
refresh();
`;

export function homeRoutes(deps: Pick<Deps, 'config'>) {
  const app = new Hono<AppEnv>();
  app.get('/', (c) =>
    c.html(
      page({
        title: 'Sign in',
        nonce: cspNonce(c),
        script,
        body: html`<main>
  <section id="email-step">
    <h1>Sign in</h1>
    <form id="email-form">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="email" required>
      <button type="submit">Email me a code</button>
      <p id="email-error" class="error" role="alert"></p>
    </form>
    ${deps.config.mail.devMailbox ? html`<p class="muted">No SMTP is set: mail lands in the <a href="/dev/mailbox" target="_blank">dev mailbox</a>.</p>` : ''}
  </section>
  <section id="code-step" hidden>
    <h1>Check your email</h1>
    <form id="code-form">
      <label for="code">6-digit code</label>
      <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required>
      <button type="submit">Sign in</button>
      <p id="code-error" class="error" role="alert"></p>
    </form>
    <p class="muted">Or open the link in the email.</p>
  </section>
  <section id="signed-in" hidden>
    <h1>Signed in</h1>
    <p>as <strong id="who"></strong></p>
    <form id="profile-form">
      <label for="name">Name</label>
      <input id="name" name="name" autocomplete="name">
      <button type="submit">Save</button>
      <p id="saved" role="status"></p>
    </form>
    <button id="logout" class="secondary">Sign out</button>
  </section>
</main>`,
      }),
    ),
  );
  return app;
}
