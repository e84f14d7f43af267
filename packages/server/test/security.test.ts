import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { CORS_ORIGINS: 'https://app.example.com' } });
});
afterAll(() => server?.stop());

describe('cross-site protection', () => {
  it('refuses cookie-authenticated writes from another origin with 403 csrf_rejected', async () => {
    const browser = server.browser();
    await signInWithCode(server, browser, uniqueEmail());
    const evil = await browser.request('PATCH', '/api/profile', { json: { name: 'pwned' }, headers: { origin: 'https://evil.example.net' } });
    expect(evil.status).toBe(403);
    expect(evil.body.error.code).toBe('csrf_rejected');
    const nullOrigin = await browser.request('POST', '/api/auth/logout', { headers: { origin: 'null' } });
    expect(nullOrigin.status).toBe(403);
    const noOriginCrossSite = await browser.request('POST', '/api/auth/logout', { headers: { origin: undefined as unknown as string, 'sec-fetch-site': 'cross-site' } });
    expect(noOriginCrossSite.status).toBe(403);
    expect((await browser.get('/api/profile')).body.profile.name).toBeNull();
    expect((await browser.get('/api/auth/session')).status).toBe(200);
  });

  it('accepts writes from our own origin and from configured CORS origins', async () => {
    const browser = server.browser();
    await signInWithCode(server, browser, uniqueEmail());
    const own = await browser.patch('/api/profile', { name: 'Own' });
    expect(own.status).toBe(200);
    const partner = await browser.request('PATCH', '/api/profile', { json: { name: 'Partner' }, headers: { origin: 'https://app.example.com' } });
    expect(partner.status).toBe(200);
    expect(partner.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(partner.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('opens CORS only to configured origins', async () => {
    const pre = (origin: string) =>
      server.browser().request('OPTIONS', '/api/profile', {
        headers: { origin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'content-type' },
      });
    expect((await pre('https://app.example.com')).headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect((await pre('https://evil.example.net')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('sends security headers on pages', async () => {
    const res = await server.browser().get('/');
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    // The page's inline script and style run under a nonce made for this answer alone.
    const nonce = /script-src 'self' 'nonce-([\w+/=]+)'/.exec(res.headers.get('content-security-policy') ?? '')?.[1];
    expect(nonce).toBeDefined();
    expect(res.text).toContain(`<script nonce="${nonce}">`);
    const again = await server.browser().get('/');
    expect(again.headers.get('content-security-policy')).not.toContain(nonce);
  });

  it('sends the same headers, without a nonce, on API answers and errors', async () => {
    for (const res of [await server.browser().get('/healthz'), await server.browser().get('/api/profile')]) {
      expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'self'; script-src 'self'; .*frame-ancestors 'none'/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('vary')).toContain('Origin');
    }
  });
});

describe('health', () => {
  it('answers healthz and readyz', async () => {
    expect((await server.browser().get('/healthz')).body).toEqual({ ok: true });
    expect((await server.browser().get('/readyz')).body).toEqual({ ok: true });
  });
});
