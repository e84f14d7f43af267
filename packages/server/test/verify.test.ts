import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
const clock = manualClock();
beforeAll(async () => {
  // Generous send limits: these tests are about verification, not sending.
  server = await startTestServer({
    clock,
    env: { RATE_LIMIT_EMAIL_PER_MINUTE: '100', RATE_LIMIT_EMAIL_PER_HOUR: '1000', RATE_LIMIT_IP_PER_10_MINUTES: '100000' },
  });
});
afterAll(() => server?.stop());

async function start(email = uniqueEmail()) {
  const browser = server.browser();
  const sent = await browser.post('/api/auth/passwordless/send', { email });
  const mail = await server.latestMail(email);
  return { browser, email, id: sent.body.authRequestId as string, code: mail.code!, link: mail.link! };
}
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('verification rules', () => {
  it('refuses an expired code with 410 otp_expired and an expired link with link_expired', async () => {
    const { browser, id, code, link } = await start();
    clock.advance(301);
    try {
      const res = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code });
      expect(res.status).toBe(410);
      expect(res.body.error.code).toBe('otp_expired');
      const page = await browser.get(new URL(link).pathname + new URL(link).search);
      expect(page.status).toBe(410);
      expect(page.text).toContain('data-error-code="link_expired"');
    } finally {
      clock.advance(-301);
    }
  });

  it('counts wrong codes down to zero, then locks the request with 429 too_many_attempts even for the right code', async () => {
    const { browser, id, code } = await start();
    for (let i = 4; i >= 0; i--) {
      const res = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code: wrong(code) });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'otp_invalid', attemptsRemaining: i });
    }
    const sixth = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code: wrong(code) });
    expect(sixth.status).toBe(429);
    expect(sixth.body.error.code).toBe('too_many_attempts');
    const right = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code });
    expect(right.status).toBe(429);
    expect(right.body.error.code).toBe('too_many_attempts');
    const resend = await browser.post('/api/auth/passwordless/resend', { authRequestId: id });
    expect(resend.body.error.code).toBe('too_many_attempts');
  });

  it('forgets wrong codes older than the 10-minute window', async () => {
    const email = uniqueEmail();
    const browser = server.browser();
    // A long-lived request so the window can pass before it expires.
    await server.deps.db.query('select 1');
    const { id, code } = await start(email);
    await server.db.query(`update hallpass.auth_requests set expires_at = now() + interval '1 hour' where id = $1`, [id]);
    for (let i = 0; i < 4; i++) await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code: wrong(code) });
    clock.advance(601);
    try {
      const res = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code: wrong(code) });
      expect(res.body.error).toMatchObject({ code: 'otp_invalid', attemptsRemaining: 4 });
    } finally {
      clock.advance(-601);
    }
  });

  it('refuses a used code and a used link', async () => {
    const { browser, id, code } = await start();
    expect((await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code })).status).toBe(200);
    const again = await server.browser().post('/api/auth/passwordless/verify', { authRequestId: id, code });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('auth_request_used');
  });

  it('resend issues a fresh code and link and kills the old ones', async () => {
    const { browser, email, id, code: oldCode, link: oldLink } = await start();
    const resent = await browser.post('/api/auth/passwordless/resend', { authRequestId: id });
    expect(resent.status).toBe(200);
    expect(resent.body.authRequestId).toBe(id);
    const fresh = await server.latestMail(email);
    expect(fresh.link).not.toBe(oldLink);

    const oldPage = await browser.get(new URL(oldLink).pathname + new URL(oldLink).search);
    expect(oldPage.status).toBe(400);
    if (oldCode !== fresh.code) {
      const old = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code: oldCode });
      expect(old.body.error.code).toBe('otp_invalid');
    }
    const ok = await browser.post('/api/auth/passwordless/verify', { authRequestId: id, code: fresh.code });
    expect(ok.status).toBe(200);
  });

  it('gives exactly one session to 20 concurrent verifies of one code', async () => {
    const { id, code, email } = await start();
    const browsers = Array.from({ length: 20 }, () => server.browser());
    const results = await Promise.all(browsers.map((b) => b.post('/api/auth/passwordless/verify', { authRequestId: id, code })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    const { rows } = await server.db.query<{ n: number }>(
      `select count(*)::int as n from hallpass.sessions s join public.profiles p on p.id = s.profile_id where p.email = $1`,
      [email],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('answers known and unknown addresses identically', async () => {
    const known = uniqueEmail('known');
    const { browser } = await start(known);
    await browser.post('/api/auth/passwordless/verify', { authRequestId: (await start(known)).id, code: (await server.latestMail(known)).code });
    const a = await server.browser().post('/api/auth/passwordless/send', { email: known });
    const b = await server.browser().post('/api/auth/passwordless/send', { email: uniqueEmail('nobody') });
    const shape = (r: typeof a) => ({
      status: r.status,
      keys: Object.keys(r.body).sort(),
      expiresIn: r.body.expiresIn,
      type: r.body.passwordlessType,
      cookies: r.headers.getSetCookie().length,
      headers: [...r.headers.keys()].filter((h) => !['date', 'x-request-id', 'content-security-policy', 'content-length'].includes(h)).sort(),
    });
    expect(shape(a)).toEqual(shape(b));
  });

  it('stores only digests: no code or token appears in any table', async () => {
    const { code, link } = await start();
    const token = new URL(link).searchParams.get('link_token')!;
    const { rows } = await server.db.query<{ dump: string }>(
      `select (select coalesce(string_agg(t::text, ' '), '') from hallpass.auth_requests t) ||
              (select coalesce(string_agg(t::text, ' '), '') from hallpass.mail_outbox t) ||
              (select coalesce(string_agg(t::text, ' '), '') from hallpass.refresh_tokens t) as dump`,
    );
    expect(rows[0]!.dump).not.toContain(token);
    expect(rows[0]!.dump).not.toContain(Buffer.from(token).toString('hex'));
    expect(rows[0]!.dump).not.toMatch(new RegExp(`\\b${code}\\b`));
  });
});

describe('hallpass.digests_equal (the database side of the code comparison)', () => {
  it('matches only identical digests of the same length, and never NULL', async () => {
    const a = Buffer.alloc(32, 7);
    const lastByte = Buffer.from(a);
    lastByte[31] = 8;
    const firstByte = Buffer.from(a);
    firstByte[0] = 6;
    const cases: Array<[Buffer | null, Buffer | null, boolean]> = [
      [a, Buffer.from(a), true],
      [a, lastByte, false],
      [a, firstByte, false],
      [a, a.subarray(0, 31), false],
      [null, a, false],
      [a, null, false],
      [null, null, false],
    ];
    for (const [x, y, expected] of cases) {
      const { rows } = await server.db.query<{ eq: boolean }>('select hallpass.digests_equal($1, $2) as eq', [x, y]);
      expect(rows[0]!.eq).toBe(expected);
    }
  });

  it('refuses a code for a link-only request (no code digest) as otp_invalid and counts it', async () => {
    const email = uniqueEmail();
    const { id } = await start(email);
    await server.db.query('update hallpass.auth_requests set code_hash = null where id = $1', [id]);
    const res = await server.browser().post('/api/auth/passwordless/verify', { authRequestId: id, code: '123456' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'otp_invalid', attemptsRemaining: 4 });
  });
});
