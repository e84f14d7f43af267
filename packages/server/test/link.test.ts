import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { REDIRECT_ALLOW_LIST: 'https://shop.example.com/account' } });
});
afterAll(() => server?.stop());

const tokenOf = (link: string) => new URL(link).searchParams.get('link_token')!;

describe('magic link', () => {
  it('GET shows a confirm page that consumes nothing, leaks no referrer and can be opened many times', async () => {
    const email = uniqueEmail();
    const browser = server.browser();
    await browser.post('/api/auth/passwordless/send', { email });
    const { link } = await server.latestMail(email);
    const scanner = server.browser();
    for (let i = 0; i < 3; i++) {
      const page = await scanner.get(new URL(link!).pathname + new URL(link!).search);
      expect(page.status).toBe(200);
      expect(page.headers.get('referrer-policy')).toBe('no-referrer');
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(page.text).toContain(email);
      expect(page.text).toContain('method="post"');
      expect(page.headers.getSetCookie()).toHaveLength(0);
    }
    expect(scanner.cookies.size).toBe(0);
    const { rows } = await server.db.query<{ consumed_at: Date | null }>('select consumed_at from hallpass.auth_requests where email = $1', [email]);
    expect(rows[0]!.consumed_at).toBeNull();
  });

  it('signs in when the confirm form is posted, redirects to the app, and works only once', async () => {
    const email = uniqueEmail();
    const browser = server.browser();
    await browser.post('/api/auth/passwordless/send', { email });
    const { link } = await server.latestMail(email);
    const form = `link_token=${tokenOf(link!)}`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const res = await browser.request('POST', '/passwordless/verify', { body: form, headers });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    const session = await browser.get('/api/auth/session');
    expect(session.status).toBe(200);
    expect(session.body.user.email).toBe(email);
    expect(session.body.session.amr[0].method).toBe('magic_link');

    const again = await server.browser().request('POST', '/passwordless/verify', { body: form, headers });
    expect(again.status).toBe(409);
    expect(again.text).toContain('data-error-code="auth_request_used"');
    const page = await server.browser().get(`/passwordless/verify?link_token=${tokenOf(link!)}`);
    expect(page.status).toBe(409);
  });

  it('also verifies through the JSON API with linkToken', async () => {
    const email = uniqueEmail();
    const browser = server.browser();
    await browser.post('/api/auth/passwordless/send', { email });
    const { link } = await server.latestMail(email);
    const res = await browser.post('/api/auth/passwordless/verify', { linkToken: tokenOf(link!) });
    expect(res.status).toBe(200);
    expect(res.body.user.email).toBe(email);
  });

  it('redirects only to allow-listed targets given at send time', async () => {
    const browser = server.browser();
    const bad = await browser.post('/api/auth/passwordless/send', { email: uniqueEmail(), redirectTo: 'https://evil.example.net/' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_redirect');
    const sneaky = await browser.post('/api/auth/passwordless/send', { email: uniqueEmail(), redirectTo: 'https://shop.example.com/accounting' });
    expect(sneaky.body.error.code).toBe('invalid_redirect');
    const protoRel = await browser.post('/api/auth/passwordless/send', { email: uniqueEmail(), redirectTo: '//evil.example.net' });
    expect(protoRel.body.error.code).toBe('invalid_redirect');

    const email = uniqueEmail();
    const ok = await browser.post('/api/auth/passwordless/send', { email, redirectTo: 'https://shop.example.com/account/orders' });
    expect(ok.status).toBe(200);
    const { link } = await server.latestMail(email);
    const res = await browser.request('POST', '/passwordless/verify', {
      body: `link_token=${tokenOf(link!)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('https://shop.example.com/account/orders');
  });

  it('shows an invalid-link page for unknown or malformed tokens', async () => {
    const unknown = await server.browser().get('/passwordless/verify?link_token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('data-error-code="link_invalid"');
    const malformed = await server.browser().get('/passwordless/verify?link_token=%3Cscript%3E');
    expect(malformed.status).toBe(400);
    expect(malformed.text).not.toContain('<script>');
  });
});

describe('same-browser enforcement', () => {
  let strict: TestServer;
  beforeAll(async () => {
    strict = await startTestServer({ env: { PASSWORDLESS_ENFORCE_SAME_BROWSER: 'true' } });
  });
  afterAll(() => strict?.stop());

  it('works in the browser that asked and says so plainly in another', async () => {
    const email = uniqueEmail();
    const asker = strict.browser();
    const sent = await asker.post('/api/auth/passwordless/send', { email });
    expect(sent.headers.getSetCookie().some((c) => c.startsWith('hallpass-binding=') && /HttpOnly/i.test(c))).toBe(true);
    const { link } = await strict.latestMail(email);
    const path = new URL(link!).pathname + new URL(link!).search;

    const other = strict.browser();
    const page = await other.get(path);
    expect(page.status).toBe(403);
    expect(page.text).toContain('data-error-code="different_browser"');
    expect(page.text).toContain('same browser');
    const post = await other.request('POST', '/passwordless/verify', {
      body: `link_token=${tokenOf(link!)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(post.status).toBe(403);
    expect(other.cookies.has('hallpass-access')).toBe(false);

    expect((await asker.get(path)).status).toBe(200);
    const ok = await asker.request('POST', '/passwordless/verify', {
      body: `link_token=${tokenOf(link!)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(ok.status).toBe(303);
    expect((await asker.get('/api/auth/session')).status).toBe(200);
  });
});
