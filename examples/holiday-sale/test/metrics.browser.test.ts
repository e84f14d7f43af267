import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from '../../../packages/server/test/harness.ts';
import { hasChromium, launchBrowser, screenshot } from './browser.ts';

const escape = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);

/** A small operator's page over a /metrics scrape: the headline figures, sends by outcome, the raw text. */
function metricsPage(url: string, text: string): string {
  const value = (name: string, labels = '') => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const sends = [...text.matchAll(/^hallpass_passwordless_sends_total\{outcome="([a-z_]+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  const max = Math.max(1, ...sends.map(([, n]) => n));
  const headline = [
    ['sign-ins', value('hallpass_sign_ins_total')],
    ['sign-ups', value('hallpass_sign_ups_total')],
    ['mail sent (attempts)', value('hallpass_mail_delivery_attempts_total')],
    ['outbox depth', value('hallpass_mail_outbox_depth')],
    ['limit refusals (email/min)', value('hallpass_rate_limit_refusals_total', 'limiter="email_minute"')],
    ['sessions revoked (logout)', value('hallpass_sessions_revoked_total', 'reason="logout"')],
    ['data API GET 200', value('hallpass_rest_requests_total', 'method="GET",status="200"')],
    ['event-loop lag p99 (ms)', Math.round(value('nodejs_eventloop_lag_p99_seconds') * 1000 * 10) / 10],
  ] as const;
  const raw = text
    .split('\n')
    .filter((l) => l.startsWith('hallpass_') && !l.includes('_bucket') && !/ 0$/.test(l))
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Hallpass metrics</title><style>
    body { font: 14px system-ui, sans-serif; margin: 24px; color: #1f2937; }
    h1 { font-size: 20px; margin: 0 0 4px; } .muted { color: #6b7280; margin: 0 0 16px; }
    .cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin-bottom: 18px; }
    .card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 12px; }
    .card b { display: block; font-size: 24px; } .card span { color: #6b7280; font-size: 12px; }
    .bar { display: flex; align-items: center; gap: 8px; margin: 3px 0; font-size: 12px; }
    .bar i { display: block; height: 14px; background: #2563eb; border-radius: 3px; }
    .bar code { width: 230px; } pre { background: #f3f4f6; padding: 10px; font-size: 11px; border-radius: 6px; }
  </style></head><body>
  <h1>Hallpass — GET ${escape(url)}/metrics</h1>
  <p class="muted">Read from a running instance after real sign-ins (Prometheus text format, prom-client).</p>
  <div class="cards">${headline.map(([k, v]) => `<div class="card"><b>${v}</b><span>${escape(k)}</span></div>`).join('')}</div>
  <h2 style="font-size:15px">hallpass_passwordless_sends_total by outcome</h2>
  ${sends.map(([k, n]) => `<div class="bar"><code>${escape(k)}</code><i style="width:${(n / max) * 400}px"></i>${n}</div>`).join('')}
  <h2 style="font-size:15px">non-zero hallpass_* samples</h2>
  <pre>${escape(raw)}</pre></body></html>`;
}

describe.skipIf(!hasChromium)('metrics, read by an operator', () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows real figures from /metrics after sign-ins, a refused send, a logout and data API reads', async () => {
    for (let i = 0; i < 4; i++) {
      const b = server.browser();
      await signInWithCode(server, b, uniqueEmail('metrics-shot'));
      await b.get('/rest/v1/profiles?select=name');
      if (i === 0) await b.post('/api/auth/logout');
    }
    const limited = uniqueEmail('metrics-limit');
    for (let i = 0; i < 3; i++) await server.browser().post('/api/auth/passwordless/send', { email: limited });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.setContent(metricsPage(server.url, text));
    expect(await page.locator('.card b').first().textContent()).toBe('4');
    await expect(page.locator('pre').textContent()).resolves.toContain('hallpass_sign_ins_total 4');
    await screenshot(page, 'metrics');
    await page.close();
  }, 120_000);
});
