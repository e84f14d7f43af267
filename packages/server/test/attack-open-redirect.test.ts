import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestBrowser, type TestServer } from './harness.ts';

// Attack (issue 9, finding 1): `redirectTo: "/\t/evil.example/x"` was accepted at send; after Continue
// the answer was `303 Location: /\t/evil.example/x`, which browsers read as `//evil.example/x`.
let server: TestServer;
let base: string;
beforeAll(async () => {
  server = await startTestServer({ env: { REDIRECT_ALLOW_LIST: 'https://shop.example.com/account' } });
  base = server.deps.config.baseUrl;
});
afterAll(() => server?.stop());

const tokenOf = (link: string) => new URL(link).searchParams.get('link_token')!;

async function continueLink(browser: TestBrowser, email: string) {
  const { link } = await server.latestMail(email);
  return browser.request('POST', '/passwordless/verify', {
    body: `link_token=${tokenOf(link!)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

const hostile = [
  '/\t/evil.example/x',
  '/\n/evil.example/x',
  '/\r/evil.example/x',
  '/\u0000/evil.example',
  '/x\u007f',
  '\t//evil.example',
  '/\\evil.example/x',
  '\\\\evil.example/x',
  '//evil.example/x',
  '///evil.example/x',
  'https:evil.example',
  'https://evil.example/',
  'http://localhost@evil.example/',
  'https://shop.example.com@evil.example/account',
  'https://user:pass@shop.example.com/account',
  'javascript:alert(document.cookie)',
  'JavaScript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'https://shop.example.com/accounting',
  'https://shop.example.com/account/../admin',
  'https://shop.example.com/account/%2e%2e/admin',
  'https://shop.example.com/account%2f..%2fadmin',
  'https://shop.example.com/',
];

describe('attack: open redirect after a magic-link sign-in', () => {
  it('refuses every hostile redirectTo at send with 400 invalid_redirect, before any mail is queued', async () => {
    const browser = server.browser();
    for (const redirectTo of hostile) {
      const email = uniqueEmail('redirect');
      const res = await browser.post('/api/auth/passwordless/send', { email, redirectTo });
      expect({ redirectTo, status: res.status, code: res.body?.error?.code }).toEqual({ redirectTo, status: 400, code: 'invalid_redirect' });
      const { rows } = await server.db.query('select 1 from hallpass.auth_requests where email = $1', [email]);
      expect(rows).toHaveLength(0);
    }
  });

  it('stores and emits the normalised resolved URL, never the raw input', async () => {
    const cases: Array<[string, string]> = [
      ['/account?tab=orders#top', `${base}/account?tab=orders#top`],
      ['account', `${base}/account`],
      ['https://shop.example.com/account/./orders/../returns', 'https://shop.example.com/account/returns'],
      ['HTTPS://SHOP.EXAMPLE.COM/account', 'https://shop.example.com/account'],
    ];
    for (const [redirectTo, resolved] of cases) {
      const email = uniqueEmail('redirect');
      const browser = server.browser();
      const sent = await browser.post('/api/auth/passwordless/send', { email, redirectTo });
      expect(sent.status).toBe(200);
      const { rows } = await server.db.query<{ redirect_to: string }>('select redirect_to from hallpass.auth_requests where email = $1', [email]);
      expect(rows[0]!.redirect_to).toBe(resolved);
      const res = await continueLink(browser, email);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(resolved);
    }
  });

  it('never redirects off-origin on Continue, even for a raw target stored before this check existed', async () => {
    for (const raw of ['/\t/evil.example/x', '/\n/evil.example/x', '//evil.example/x', 'https://evil.example/']) {
      const email = uniqueEmail('redirect');
      const browser = server.browser();
      expect((await browser.post('/api/auth/passwordless/send', { email })).status).toBe(200);
      await server.db.query('update hallpass.auth_requests set redirect_to = $2 where email = $1', [email, raw]);
      const res = await continueLink(browser, email);
      expect(res.status).toBe(303);
      const location = res.headers.get('location')!;
      expect(location).toBe('/');
      expect(new URL(location, base).origin).toBe(base);
      expect((await browser.get('/api/auth/session')).status).toBe(200);
    }
  });
});
