import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, signInWithCode, startTestServer, uniqueEmail, type TestBrowser, type TestServer } from './harness.ts';

// Attack (issue 9, finding 6): each send gives 5 more guesses and the send limits allow 10 sends an
// hour, so one address could take about 1,200 code guesses a day. Now an address has a budget of
// wrong codes across all its requests (20 per 24 h by default); past it its codes are refused with
// 429 too_many_attempts and Retry-After, while its magic links keep working.
const clock = manualClock();
let server: TestServer;
beforeAll(async () => {
  // Generous send limits: the attacker here is limited only by the code budget.
  server = await startTestServer({ clock, env: { RATE_LIMIT_EMAIL_PER_MINUTE: '100', RATE_LIMIT_EMAIL_PER_HOUR: '100' } });
});
afterAll(() => server?.stop());

const wrongFor = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');
const tokenOf = (link: string) => new URL(link).searchParams.get('link_token')!;

async function send(browser: TestBrowser, email: string) {
  const sent = await browser.post('/api/auth/passwordless/send', { email });
  expect(sent.status).toBe(200);
  const mail = await server.latestMail(email);
  return { authRequestId: sent.body.authRequestId as string, code: mail.code!, link: mail.link! };
}

describe('attack: guessing codes across many sign-in requests for one address', () => {
  it('refuses codes for the address after 20 wrong ones across its requests (429 too_many_attempts, Retry-After), but not its magic link', async () => {
    const victim = uniqueEmail('victim');
    const attacker = server.browser();
    const remaining: number[] = [];
    // Four requests, five wrong codes each: within every request's own limit, 20 for the address.
    for (let r = 0; r < 4; r++) {
      const { authRequestId, code } = await send(attacker, victim);
      for (let i = 0; i < 5; i++) {
        const res = await attacker.post('/api/auth/passwordless/verify', { authRequestId, code: wrongFor(code) });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('otp_invalid');
        remaining.push(res.body.error.attemptsRemaining);
      }
    }
    expect(remaining.slice(-3)).toEqual([2, 1, 0]);

    // A fifth request: even the right code is refused now (else guessing would simply go on).
    const fifth = await send(attacker, victim);
    const refused = await attacker.post('/api/auth/passwordless/verify', { authRequestId: fifth.authRequestId, code: fifth.code });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_attempts');
    const retryAfter = Number(refused.headers.get('retry-after'));
    // The budget refills one wrong code every 24 h / 20 = 72 minutes.
    expect(Math.abs(retryAfter - 72 * 60)).toBeLessThanOrEqual(1);
    const wrong = await attacker.post('/api/auth/passwordless/verify', { authRequestId: fifth.authRequestId, code: wrongFor(fifth.code) });
    expect(wrong.status).toBe(429);
    expect(wrong.body.error.code).toBe('too_many_attempts');

    // The owner is not locked out: the link from the same mail signs in.
    const owner = server.browser();
    const viaLink = await owner.post('/api/auth/passwordless/verify', { linkToken: tokenOf(fifth.link) });
    expect(viaLink.status).toBe(200);
    expect(viaLink.body.user.email).toBe(victim);

    // Once the budget refills, codes work again.
    clock.advance(retryAfter);
    const later = await send(owner, victim);
    expect((await owner.post('/api/auth/passwordless/verify', { authRequestId: later.authRequestId, code: later.code })).status).toBe(200);
  });

  it('keeps the budget per address: other addresses sign in with codes meanwhile', async () => {
    const victim = uniqueEmail('victim');
    const attacker = server.browser();
    for (let r = 0; r < 4; r++) {
      const { authRequestId, code } = await send(attacker, victim);
      for (let i = 0; i < 5; i++) await attacker.post('/api/auth/passwordless/verify', { authRequestId, code: wrongFor(code) });
    }
    const spent = await send(attacker, victim);
    expect((await attacker.post('/api/auth/passwordless/verify', { authRequestId: spent.authRequestId, code: spent.code })).status).toBe(429);
    await expect(signInWithCode(server, server.browser(), uniqueEmail('bystander'))).resolves.toBeTruthy();
  });
});
