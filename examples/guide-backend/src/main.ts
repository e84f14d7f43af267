// The guide's backend as an HTTP server: /api/auth/passwordless/send and /verify, the magic link
// callback, and the signed-in user's own profile (read under the guide's RLS policies).
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { sendLoginEmail, verifyLogin } from './server/routes/passwordless';
import { sessionCookieName } from './server/session';
import { supabaseAsUser } from './server/supabaseAdminClient';

const app = new Hono();

app.post('/api/auth/passwordless/send', async (c) => {
  const { email } = await c.req.json<{ email: string }>();
  const sent = await sendLoginEmail(email);
  return c.json({ authRequestId: sent.authRequestId, expiresIn: sent.expiresIn });
});

app.post('/api/auth/passwordless/verify', async (c) => {
  const { code, authRequestId } = await c.req.json<{ code: string; authRequestId: string }>();
  try {
    const { email, cookie } = await verifyLogin({ code }, authRequestId);
    c.header('set-cookie', cookie);
    return c.json({ email });
  } catch (err) {
    return c.json({ error: (err as { errorCode?: string }).errorCode ?? 'verify_failed' }, 400);
  }
});

// The magic link: `${APP_BASE_URL}/passwordless/verify?link_token=...`.
app.get('/passwordless/verify', async (c) => {
  const linkToken = c.req.query('link_token') ?? '';
  try {
    const { cookie } = await verifyLogin({ linkToken });
    c.header('set-cookie', cookie);
    return c.redirect('/', 303);
  } catch {
    return c.text('This link does not work any more. Ask for a new one.', 400);
  }
});

app.get('/api/profile', async (c) => {
  const jwt = getCookie(c, sessionCookieName);
  if (!jwt) return c.json({ error: 'signed_out' }, 401);
  // No filter: the guide's policies let the user see only their own row.
  const { data, error } = await supabaseAsUser(jwt).from('profiles').select('email, last_verified');
  if (error) return c.json({ error: error.message }, 500);
  return c.json({ profiles: data });
});

const port = Number(process.env.PORT ?? 4000);
serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, (info) => console.log(`guide backend listening on ${info.port}`));
