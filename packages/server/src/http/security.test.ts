import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { AppError } from '../shared/errors.ts';
import { originCheck } from './security.ts';

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
