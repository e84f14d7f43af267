import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

const servers: TestServer[] = [];
afterAll(() => Promise.all(servers.map((s) => s.stop())));
async function serverWith(env: Record<string, string>) {
  const s = await startTestServer({ env });
  servers.push(s);
  return s;
}
const requests = async (s: TestServer, email: string) =>
  (await s.db.query<{ n: number }>('select count(*)::int as n from hallpass.auth_requests where email = $1', [email])).rows[0]!.n;

describe('send limits', () => {
  it('allows 2 emails a minute per address (resends count), then 429 email_rate_limited_minute with Retry-After; survives a restart', async () => {
    let s = await serverWith({});
    const email = uniqueEmail();
    const b = s.browser();
    const first = await b.post('/api/auth/passwordless/send', { email });
    expect(first.status).toBe(200);
    const resend = await b.post('/api/auth/passwordless/resend', { authRequestId: first.body.authRequestId });
    expect(resend.status).toBe(200);
    const third = await b.post('/api/auth/passwordless/send', { email: email.toUpperCase() });
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('email_rate_limited_minute');
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(25);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(third.body.error.retryAfter).toBe(retryAfter);
    expect(await requests(s, email)).toBe(1);

    s = await s.restart();
    servers[0] = s;
    const afterRestart = await s.browser().post('/api/auth/passwordless/send', { email });
    expect(afterRestart.status).toBe(429);
    expect(afterRestart.body.error.code).toBe('email_rate_limited_minute');
  });

  it('limits concurrent sends item by item when they are gathered into one batch: 2 of 6 for one address get through, each with its mail', async () => {
    const s = await serverWith({});
    const email = uniqueEmail();
    const others = Array.from({ length: 4 }, () => uniqueEmail());
    // Sent together, these go to the database as one or two batches (see createBatcher).
    const sends = await Promise.all([
      ...Array.from({ length: 6 }, () => s.browser().post('/api/auth/passwordless/send', { email })),
      ...others.map((o) => s.browser().post('/api/auth/passwordless/send', { email: o })),
    ]);
    const mine = sends.slice(0, 6);
    expect(mine.filter((r) => r.status === 200)).toHaveLength(2);
    expect(mine.filter((r) => r.status === 429).map((r) => r.body.error.code)).toEqual(Array(4).fill('email_rate_limited_minute'));
    expect(sends.slice(6).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(await requests(s, email)).toBe(2);
    const mail = await s.db.query<{ n: number }>('select count(*)::int as n from hallpass.mail_outbox where to_email = $1', [email]);
    expect(mail.rows[0]!.n).toBe(2);
  });

  it('allows 10 emails an hour per address, then 429 email_rate_limited_hour', async () => {
    const s = await serverWith({ RATE_LIMIT_EMAIL_PER_MINUTE: '1000' });
    const email = uniqueEmail();
    for (let i = 0; i < 10; i++) expect((await s.browser().post('/api/auth/passwordless/send', { email })).status).toBe(200);
    const over = await s.browser().post('/api/auth/passwordless/send', { email });
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('email_rate_limited_hour');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(300);
    expect(await requests(s, email)).toBe(10);
  });

  it('allows a set number of sends per IP per 10 minutes, then 429 ip_rate_limited', async () => {
    const s = await serverWith({ RATE_LIMIT_IP_PER_10_MINUTES: '3' });
    for (let i = 0; i < 3; i++) expect((await s.browser().post('/api/auth/passwordless/send', { email: uniqueEmail() })).status).toBe(200);
    const email = uniqueEmail();
    const over = await s.browser().post('/api/auth/passwordless/send', { email });
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('ip_rate_limited');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(150);
    expect(await requests(s, email)).toBe(0);
  });

  it('defaults to 30 sends per IP: the 31st is refused', async () => {
    const s = await serverWith({ RATE_LIMIT_EMAIL_PER_MINUTE: '1000' });
    const sends = await Promise.all(Array.from({ length: 31 }, () => s.browser().post('/api/auth/passwordless/send', { email: uniqueEmail() })));
    const codes = sends.map((r) => (r.status === 200 ? 'ok' : r.body.error.code));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(30);
    expect(codes.filter((c) => c === 'ip_rate_limited')).toHaveLength(1);
  });
});
