import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { describe, expect, it } from 'vitest';
import { AppError } from '../shared/errors.ts';
import { cspNonce, originCheck } from './security.ts';

const app = new Hono();
app.use(originCheck({ allowedOrigins: ['https://shop.example'] }));
app.post('/', (c) => c.text('ok'));
app.onError((err, c) => c.text(err instanceof AppError ? err.code : 'internal', 403));

const post = (headers: Record<string, string>) => app.request('/', { method: 'POST', headers });

describe('originCheck', () => {
  it('accepts an allowed Origin and refuses another', async () => {
    expect((await post({ origin: 'https://shop.example' })).status).toBe(200);
    expect(await (await post({ origin: 'https://evil.example' })).text()).toBe('csrf_rejected');
  });

  it('accepts Origin: null only when the browser says the post came from the same origin', async () => {
    // A form on a no-referrer page (the magic-link confirm page) posts with Origin: null.
    expect((await post({ origin: 'null', 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect(await (await post({ origin: 'null', 'sec-fetch-site': 'cross-site' })).text()).toBe('csrf_rejected');
    expect(await (await post({ origin: 'null' })).text()).toBe('csrf_rejected');
  });
});

describe('cspNonce', () => {
  it('gives each request its own 16-byte nonce, the same in both directives and for the page, across pool refills', async () => {
    const nonce = cspNonce(64);
    const pages = new Hono<{ Variables: { secureHeadersNonce?: string } }>();
    pages.use(secureHeaders({ contentSecurityPolicy: { scriptSrc: ["'self'", nonce], styleSrc: ["'self'", nonce] } }));
    pages.get('/', (c) => c.text(c.get('secureHeadersNonce') ?? ''));
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const res = await pages.request('/');
      const page = await res.text();
      expect(Buffer.from(page, 'base64')).toHaveLength(16);
      expect(res.headers.get('content-security-policy')).toBe(`script-src 'self' 'nonce-${page}'; style-src 'self' 'nonce-${page}'`);
      seen.add(page);
    }
    expect(seen.size).toBe(10);
  });
});
