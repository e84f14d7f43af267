import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestResponse, type TestServer } from './harness.ts';

// Attack (issue 9, finding 8): a shared cache (corporate proxy, CDN) or the browser's back/forward
// cache keeps a sign-in answer, a session or a profile and hands it to the next person.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server?.stop());

const tokenOf = (link: string) => new URL(link).searchParams.get('link_token')!;

function expectNoStore(label: string, res: TestResponse) {
  expect({ label, status: res.status, cacheControl: res.headers.get('cache-control') }).toEqual({
    label,
    status: res.status,
    cacheControl: 'no-store',
  });
}

describe('attack: a cache keeps an auth or session answer', () => {
  it('sends Cache-Control: no-store on every sign-in, session and profile answer, errors and redirects included', async () => {
    const email = uniqueEmail('cache');
    const browser = server.browser();
    const sent = await browser.post('/api/auth/passwordless/send', { email });
    expectNoStore('send', sent);
    expectNoStore('send error', await browser.post('/api/auth/passwordless/send', { email: 'not an address' }));
    expectNoStore('resend', await browser.post('/api/auth/passwordless/resend', { authRequestId: sent.body.authRequestId }));
    const mail = await server.latestMail(email);
    expectNoStore('wrong code', await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code === '000000' ? '111111' : '000000' }));
    expectNoStore('confirm page', await server.browser().get(`/passwordless/verify?link_token=${tokenOf(mail.link!)}`));
    expectNoStore('confirm error page', await server.browser().get('/passwordless/verify?link_token=nope'));
    expectNoStore('unauthenticated session', await server.browser().get('/api/auth/session'));
    const verified = await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
    expect(verified.status).toBe(200);
    expectNoStore('verify', verified);

    expectNoStore('session', await browser.get('/api/auth/session'));
    expectNoStore('sessions', await browser.get('/api/auth/sessions'));
    expectNoStore('profile', await browser.get('/api/profile'));
    expectNoStore('profile update', await browser.patch('/api/profile', { name: 'Cached?' }));
    expectNoStore('data api', await browser.get('/rest/v1/profiles?select=email'));
    expectNoStore('refresh', await browser.post('/api/auth/refresh'));
    expectNoStore('dev mailbox', await browser.get(`/dev/mailbox/messages?to=${encodeURIComponent(email)}`));
    expectNoStore('logout', await browser.post('/api/auth/logout'));
  });

  it('sends it on the magic-link Continue redirect that signs the browser in', async () => {
    const email = uniqueEmail('cache');
    const browser = server.browser();
    await browser.post('/api/auth/passwordless/send', { email });
    const { link } = await server.latestMail(email);
    const res = await browser.request('POST', '/passwordless/verify', {
      body: `link_token=${tokenOf(link!)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(303);
    expectNoStore('continue', res);
  });

  it('leaves public answers cacheable (JWKS)', async () => {
    expect((await server.browser().get('/.well-known/jwks.json')).headers.get('cache-control')).not.toBe('no-store');
  });
});
