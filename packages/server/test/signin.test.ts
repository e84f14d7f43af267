import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server?.stop());

const count = async (sql: string, params: unknown[] = []) => Number(((await server.db.query<{ n: number }>(sql, params)).rows[0]!).n);

describe('code sign-in', () => {
  it('signs in with the emailed code, sets HttpOnly cookies and creates the profile', async () => {
    const browser = server.browser();
    const email = uniqueEmail('alice');
    const sent = await browser.post('/api/auth/passwordless/send', { email, state: 'xyz' });
    expect(sent.status).toBe(200);
    expect(sent.body).toEqual({
      authRequestId: expect.any(String),
      expiresAt: expect.any(String),
      expiresIn: 300,
      passwordlessType: 'LINK_OTP',
    });
    const mail = await server.latestMail(email);
    expect(mail.code).toMatch(/^\d{6}$/);
    expect(mail.link).toContain('/passwordless/verify?link_token=');
    expect(mail.subject).toContain('sign-up');
    expect(mail.text).toContain(mail.code);
    expect(mail.html).toContain(mail.code);

    const verified = await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
    expect(verified.status).toBe(200);
    expect(verified.body.user).toMatchObject({ email, name: null, metadata: {} });
    expect(verified.body.state).toBe('xyz');
    const setCookies = verified.headers.getSetCookie();
    expect(setCookies).toHaveLength(2);
    for (const c of setCookies) expect(c).toMatch(/HttpOnly/i), expect(c).toMatch(/SameSite=Lax/i);

    const session = await browser.get('/api/auth/session');
    expect(session.status).toBe(200);
    expect(session.body.user.email).toBe(email);
    expect(session.body.session.amr[0].method).toBe('otp');

    const profile = await browser.get('/api/profile');
    expect(profile.body.profile).toMatchObject({ email, id: verified.body.user.id });
    expect(profile.body.profile.lastLogin).not.toBeNull();
    expect(await count('select count(*) as n from public.profiles where email = $1', [email])).toBe(1);
  });

  it('sends the sign-in template to a known address and keeps one profile across case variants', async () => {
    const email = uniqueEmail('bob');
    const first = await signInWithCode(server, server.browser(), email);
    const upper = email.replace('bob', 'BOB').replace('example.com', 'Example.COM');
    const browser = server.browser();
    const sent = await browser.post('/api/auth/passwordless/send', { email: `  ${upper} ` });
    const mail = await server.latestMail(email);
    expect(mail.subject).toContain('sign-in');
    const again = await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
    expect(again.body.user.id).toBe(first.user.id);
    expect(await count('select count(*) as n from public.profiles where email = $1', [email])).toBe(1);
  });

  it('updates name and metadata of the own profile through PATCH /api/profile', async () => {
    const browser = server.browser();
    await signInWithCode(server, browser, uniqueEmail());
    const res = await browser.patch('/api/profile', { name: 'Ada', metadata: { theme: 'dark' } });
    expect(res.status).toBe(200);
    expect(res.body.profile).toMatchObject({ name: 'Ada', metadata: { theme: 'dark' } });
    expect(new Date(res.body.profile.updatedAt) >= new Date(res.body.profile.createdAt)).toBe(true);
  });
});
