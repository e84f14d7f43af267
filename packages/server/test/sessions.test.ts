import { SignJWT, generateKeyPair, decodeJwt, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, signInWithCode, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
const clock = manualClock();
beforeAll(async () => {
  server = await startTestServer({ clock, env: { RATE_LIMIT_IP_PER_10_MINUTES: '1000' } });
});
afterAll(() => server?.stop());

async function signedIn() {
  const browser = server.browser();
  const { user } = await signInWithCode(server, browser, uniqueEmail());
  return { browser, user };
}

describe('sessions', () => {
  it('puts Supabase-compatible claims in an ES256 access token whose key is in the JWKS', async () => {
    const { browser, user } = await signedIn();
    const claims = decodeJwt(browser.cookies.get('hallpass-access')!);
    expect(claims).toMatchObject({
      sub: user.id,
      email: user.email,
      role: 'authenticated',
      aud: 'authenticated',
      aal: 'aal1',
      session_id: expect.any(String),
      amr: [{ method: 'otp', timestamp: expect.any(Number) }],
      app_metadata: { tenant_id: expect.any(String) },
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
    const jwks = await browser.get('/.well-known/jwks.json');
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.body.keys[0].d).toBeUndefined();
  });

  it('renews an expired access token from the refresh cookie, rotating the refresh token', async () => {
    const { browser } = await signedIn();
    const oldRefresh = browser.cookies.get('hallpass-refresh')!;
    const oldAccess = browser.cookies.get('hallpass-access')!;
    clock.advance(901);
    try {
      const res = await browser.get('/api/profile');
      expect(res.status).toBe(200);
      expect(browser.cookies.get('hallpass-refresh')).not.toBe(oldRefresh);
      expect(browser.cookies.get('hallpass-access')).not.toBe(oldAccess);
    } finally {
      clock.advance(-901);
    }
  });

  it('revokes the whole session when a rotated refresh token is used again after the grace window', async () => {
    const { browser } = await signedIn();
    const stolen = browser.cookies.get('hallpass-refresh')!;
    const sessionId = decodeJwt(browser.cookies.get('hallpass-access')!).session_id;
    const rotated = await browser.post('/api/auth/refresh');
    expect(rotated.status).toBe(200);
    clock.advance(11);
    try {
      const thief = server.browser();
      thief.cookies.set('hallpass-refresh', stolen);
      const reuse = await thief.post('/api/auth/refresh');
      expect(reuse.status).toBe(401);
      expect(reuse.body.error.code).toBe('session_expired');
      // The legitimate device is signed out too: its tokens belong to the revoked session.
      const victim = await browser.get('/api/auth/session');
      expect(victim.status).toBe(401);
      const { rows } = await server.db.query<{ revoked_reason: string }>(
        `select revoked_reason from hallpass.sessions where id = $1`,
        [sessionId],
      );
      expect(rows[0]?.revoked_reason).toBe('refresh_token_reuse');
    } finally {
      clock.advance(-11);
    }
  });

  it('lets two requests that raced with one refresh cookie both through (grace window)', async () => {
    const { browser } = await signedIn();
    const refresh = browser.cookies.get('hallpass-refresh')!;
    const a = server.browser();
    const b = server.browser();
    a.cookies.set('hallpass-refresh', refresh);
    b.cookies.set('hallpass-refresh', refresh);
    const [ra, rb] = await Promise.all([a.get('/api/profile'), b.get('/api/profile')]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect((await browser.get('/api/auth/session')).status).toBe(200);
  });

  it('refuses the old cookies at once after logout, even with an unexpired access token', async () => {
    const { browser } = await signedIn();
    const copy = server.browser();
    for (const [k, v] of browser.cookies) copy.cookies.set(k, v);
    const out = await browser.post('/api/auth/logout');
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie().every((c) => /Max-Age=0/i.test(c))).toBe(true);
    expect(browser.cookies.size).toBe(0);
    const replay = await copy.get('/api/profile');
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('session_expired');
    const bearer = await server.browser().get('/api/profile', { authorization: `Bearer ${copy.cookies.get('hallpass-access') ?? ''}` });
    expect(bearer.status).toBe(401);
  });

  it('refuses forged tokens: wrong key, alg none, HS256 with the public key, tampered claims, a JWT in the refresh cookie', async () => {
    const { browser } = await signedIn();
    const real = browser.cookies.get('hallpass-access')!;
    const claims = decodeJwt(real);
    const { privateKey } = await generateKeyPair('ES256');
    const wrongKey = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims))}.`;
    const jwk = (await browser.get('/.well-known/jwks.json')).body.keys[0];
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JSON.stringify(jwk)));
    const [h, , sig] = real.split('.');
    const tampered = `${h}.${base64url.encode(JSON.stringify({ ...claims, email: 'someone-else@example.com' }))}.${sig}`;
    for (const token of [wrongKey, none, hs, tampered, 'garbage']) {
      const viaCookie = server.browser();
      viaCookie.cookies.set('hallpass-access', token);
      const r1 = await viaCookie.get('/api/profile');
      expect(r1.status, token).toBe(401);
      const r2 = await server.browser().get('/api/profile', { authorization: `Bearer ${token}` });
      expect(r2.status).toBe(401);
    }
    const wrongCookie = server.browser();
    wrongCookie.cookies.set('hallpass-refresh', real);
    expect((await wrongCookie.get('/api/profile')).status).toBe(401);
    expect((await server.browser().get('/api/profile')).status).toBe(401);
  });

  it('lists the devices of the user and signs one out from another', async () => {
    const email = uniqueEmail();
    const phone = server.browser();
    const laptop = server.browser();
    await signInWithCode(server, phone, email);
    // A second sign-in for the same address; generous minute limit is not needed: two sends are allowed.
    await signInWithCode(server, laptop, email);
    const list = await laptop.get('/api/auth/sessions');
    expect(list.body.sessions).toHaveLength(2);
    const phoneSession = list.body.sessions.find((s: { current: boolean }) => !s.current);
    const revoke = await laptop.request('DELETE', `/api/auth/sessions/${phoneSession.id}`);
    expect(revoke.status).toBe(204);
    expect((await phone.get('/api/profile')).status).toBe(401);
    expect((await laptop.get('/api/profile')).status).toBe(200);
    const foreign = await signedIn();
    const notMine = await foreign.browser.request('DELETE', `/api/auth/sessions/${list.body.sessions[0].id}`);
    expect(notMine.status).toBe(404);
  });
});
