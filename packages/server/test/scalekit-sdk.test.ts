import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scalekit } from '@scalekit-sdk/node';
import { manualClock, startTestServer, uniqueEmail, type TestServer } from './harness.ts';
import { linkTokenOf, sdkError, sdkFor } from './scalekit-helpers.ts';
import { revokeApiClient, revokeApiClientTokens } from '../src/scalekit/clients.service.ts';

// The SDK's types want its enum; at run time it takes the name, as the guide writes it.
const SIGNIN = 'SIGNIN' as never;
const SIGNUP = 'SIGNUP' as never;
const shop = 'http://shop.localhost/passwordless/verify';

describe('the unmodified @scalekit-sdk/node against Hallpass over http', () => {
  let server: TestServer;
  const clock = manualClock();
  beforeAll(async () => {
    server = await startTestServer({ clock, env: { REDIRECT_ALLOW_LIST: 'http://shop.localhost/', RATE_LIMIT_EMAIL_PER_MINUTE: '100', RATE_LIMIT_EMAIL_PER_HOUR: '1000' } });
    // Starting a server (migrations on PGlite) takes long on a loaded machine.
  }, 300_000);
  afterAll(() => server?.stop());

  const count = async (sql: string, params: unknown[] = []) => (await server.db.query<{ n: number }>(sql, params)).rows[0]!.n;

  it('sends and verifies a code headless: email and state come back, the profile is synced, no Hallpass session is opened', async () => {
    const { scalekit } = await sdkFor(server);
    const email = uniqueEmail('ada');
    const sent = await scalekit.passwordless.sendPasswordlessEmail(email.toUpperCase(), { template: SIGNIN, state: 'cart-42', expiresIn: 300, magiclinkAuthUri: shop });
    expect(sent.authRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.expiresIn).toBe(300);
    expect(sent.expiresAt).toBe(BigInt(Math.floor(clock.now().getTime() / 1000) + 300));
    expect(sent.passwordlessType).toBe(3); // LINK_OTP
    const mail = await server.latestMail(email);
    expect(mail.link).toMatch(/^http:\/\/shop\.localhost\/passwordless\/verify\?link_token=[A-Za-z0-9_-]{43}$/);
    const verified = await scalekit.passwordless.verifyPasswordlessEmail({ code: mail.code! }, sent.authRequestId);
    expect(verified).toMatchObject({ email, state: 'cart-42', template: 1, passwordlessType: 3 });
    expect(await count('select count(*)::int as n from hallpass.sessions')).toBe(0);
    expect(await count('select count(*)::int as n from public.profiles where email = $1 and last_login is not null', [email])).toBe(1);
    expect(await count(`select count(*)::int as n from public.audit_log where subject_email = $1 and actor_role = 'service_role'`, [email])).toBe(1);
  });

  it('verifies a magic link with and without the auth request id (cross-device when same-browser enforcement is off)', async () => {
    const { scalekit } = await sdkFor(server);
    const a = uniqueEmail('link');
    const sentA = await scalekit.passwordless.sendPasswordlessEmail(a, { magiclinkAuthUri: shop });
    const withId = await scalekit.passwordless.verifyPasswordlessEmail({ linkToken: linkTokenOf((await server.latestMail(a)).link) }, sentA.authRequestId);
    expect(withId.email).toBe(a);
    const b = uniqueEmail('link');
    await scalekit.passwordless.sendPasswordlessEmail(b, { magiclinkAuthUri: shop });
    const withoutId = await scalekit.passwordless.verifyPasswordlessEmail({ linkToken: linkTokenOf((await server.latestMail(b)).link) });
    expect(withoutId.email).toBe(b);
  });

  it('without magiclink_auth_uri the mail carries a code only (OTP)', async () => {
    const { scalekit } = await sdkFor(server);
    const email = uniqueEmail('otp');
    const sent = await scalekit.passwordless.sendPasswordlessEmail(email);
    expect(sent.passwordlessType).toBe(1);
    const mail = await server.latestMail(email);
    expect(mail.code).toMatch(/^\d{6}$/);
    expect(mail.link).toBeNull();
  });

  it('template SIGNUP picks the sign-up mail and template_variables fill it, escaped in the HTML', async () => {
    const { scalekit } = await sdkFor(server);
    const email = uniqueEmail('vars');
    const sent = await scalekit.passwordless.sendPasswordlessEmail(email, { template: SIGNUP, templateVariables: { app_name: 'Shop <b>&</b> Co', team: 'x' } });
    const mail = await server.latestMail(email);
    expect(mail.subject).toMatch(/is your Shop <b>&<\/b> Co sign-up code$/);
    expect(mail.html).toContain('Shop &lt;b&gt;&amp;&lt;/b&gt; Co');
    expect(mail.html).not.toContain('<b>&</b>');
    const verified = await scalekit.passwordless.verifyPasswordlessEmail({ code: mail.code! }, sent.authRequestId);
    expect(verified.template).toBe(2);
  });

  it('resend kills the old code and link; the new ones work', async () => {
    const { scalekit } = await sdkFor(server);
    const email = uniqueEmail('resend');
    const sent = await scalekit.passwordless.sendPasswordlessEmail(email, { magiclinkAuthUri: shop, expiresIn: 120, templateVariables: { app_name: 'Shop' } });
    const old = await server.latestMail(email);
    clock.advance(1);
    const again = await scalekit.passwordless.resendPasswordlessEmail(sent.authRequestId);
    expect(again.authRequestId).toBe(sent.authRequestId);
    expect(again.expiresIn).toBe(120);
    const fresh = await server.latestMail(email);
    expect(fresh.code).not.toBe(old.code);
    expect(fresh.subject).toContain('Shop');
    expect(fresh.link).toMatch(/^http:\/\/shop\.localhost\//);
    expect(await sdkError(scalekit.passwordless.verifyPasswordlessEmail({ linkToken: linkTokenOf(old.link) }))).toMatchObject({ grpcStatus: 3, errorCode: 'link_invalid' });
    expect(await sdkError(scalekit.passwordless.verifyPasswordlessEmail({ code: old.code === '000000' ? '000001' : old.code! }, sent.authRequestId))).toMatchObject({
      grpcStatus: 3,
      errorCode: 'otp_invalid',
    });
    expect((await scalekit.passwordless.verifyPasswordlessEmail({ code: fresh.code! }, sent.authRequestId)).email).toBe(email);
  });

  it('a wrong code costs one attempt, not four: InvalidArgument, never Unauthenticated (which the SDK retries)', async () => {
    const { scalekit } = await sdkFor(server);
    const email = uniqueEmail('trap');
    const sent = await scalekit.passwordless.sendPasswordlessEmail(email);
    const mail = await server.latestMail(email);
    const wrong = mail.code === '123456' ? '654321' : '123456';
    expect(await sdkError(scalekit.passwordless.verifyPasswordlessEmail({ code: wrong }, sent.authRequestId))).toEqual({
      name: 'ScalekitBadRequestException',
      grpcStatus: 3,
      httpStatus: 400,
      errorCode: 'otp_invalid',
    });
    expect(await count('select failed_attempts as n from hallpass.auth_requests where id = $1', [sent.authRequestId])).toBe(1);
  });

  it('answers every error row with its gRPC status, the SDK exception and a stable errorCode', async () => {
    const { scalekit } = await sdkFor(server);
    const pw = scalekit.passwordless;
    const send = (email: string, o: Record<string, unknown> = {}) => pw.sendPasswordlessEmail(email, o);
    const bad = (errorCode: string) => ({ name: 'ScalekitBadRequestException', grpcStatus: 3, httpStatus: 400, errorCode });
    // Bad input.
    expect(await sdkError(send('not-an-email'))).toEqual(bad('invalid_email'));
    expect(await sdkError(send(uniqueEmail(), { expiresIn: 30 }))).toEqual(bad('invalid_request'));
    expect(await sdkError(send(uniqueEmail(), { expiresIn: 3601 }))).toEqual(bad('invalid_request'));
    expect(await sdkError(send(uniqueEmail(), { templateVariables: { otp: '1' } }))).toEqual(bad('invalid_request'));
    expect(await sdkError(send(uniqueEmail(), { templateVariables: { 'bad key': '1' } }))).toEqual(bad('invalid_request'));
    expect(await sdkError(send(uniqueEmail(), { templateVariables: { k: 'x'.repeat(1025) } }))).toEqual(bad('invalid_request'));
    expect(await sdkError(send(uniqueEmail(), { templateVariables: Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`k${i}`, 'v'])) }))).toEqual(
      bad('invalid_request'),
    );
    expect(await sdkError(send(uniqueEmail(), { state: 's'.repeat(1025) }))).toEqual(bad('invalid_request'));
    expect(await sdkError(send(uniqueEmail(), { magiclinkAuthUri: 'https://evil.example/cb' }))).toEqual(bad('invalid_redirect'));
    expect(await sdkError(send(uniqueEmail(), { magiclinkAuthUri: '/relative' }))).toEqual(bad('invalid_redirect'));
    expect(await sdkError(pw.verifyPasswordlessEmail({ linkToken: 'A'.repeat(43) }))).toEqual(bad('link_invalid'));
    expect(await sdkError(pw.verifyPasswordlessEmail({ code: '123456' }))).toEqual(bad('invalid_request'));
    // Unknown auth request.
    const notFound = { name: 'ScalekitNotFoundException', grpcStatus: 5, httpStatus: 404, errorCode: 'auth_request_not_found' };
    expect(await sdkError(pw.verifyPasswordlessEmail({ code: '123456' }, '00000000-0000-4000-8000-000000000000'))).toEqual(notFound);
    expect(await sdkError(pw.resendPasswordlessEmail('no-such-request'))).toEqual(notFound);
    // Another client's request is not found to this one.
    const other = await sdkFor(server, { name: 'other-backend' });
    const theirs = await other.scalekit.passwordless.sendPasswordlessEmail(uniqueEmail());
    expect(await sdkError(pw.verifyPasswordlessEmail({ code: '123456' }, theirs.authRequestId))).toEqual(notFound);

    // Used code (already verified), used link, expired.
    const email = uniqueEmail('rows');
    const sent = await send(email, { magiclinkAuthUri: shop });
    const mail = await server.latestMail(email);
    await pw.verifyPasswordlessEmail({ code: mail.code! }, sent.authRequestId);
    expect(await sdkError(pw.verifyPasswordlessEmail({ code: mail.code! }, sent.authRequestId))).toEqual({ ...bad('auth_request_used'), grpcStatus: 9 });
    expect(await sdkError(pw.verifyPasswordlessEmail({ linkToken: linkTokenOf(mail.link) }))).toEqual(bad('auth_request_used'));
    const late = uniqueEmail('late');
    const lateSent = await send(late, { expiresIn: 60, magiclinkAuthUri: shop });
    const lateMail = await server.latestMail(late);
    clock.advance(61);
    expect(await sdkError(pw.verifyPasswordlessEmail({ code: lateMail.code! }, lateSent.authRequestId))).toEqual({ ...bad('otp_expired'), grpcStatus: 9 });
    expect(await sdkError(pw.verifyPasswordlessEmail({ linkToken: linkTokenOf(lateMail.link) }))).toEqual({ ...bad('link_expired'), grpcStatus: 9 });

    // Too many attempts: five wrong codes, then the request is locked.
    const locked = uniqueEmail('locked');
    const lockedSent = await send(locked);
    const right = (await server.latestMail(locked)).code!;
    const wrong = right === '111111' ? '222222' : '111111';
    for (let i = 0; i < 5; i++) await sdkError(pw.verifyPasswordlessEmail({ code: wrong }, lockedSent.authRequestId));
    const tooMany = { name: 'ScalekitTooManyRequestsException', grpcStatus: 8, httpStatus: 429 };
    expect(await sdkError(pw.verifyPasswordlessEmail({ code: right }, lockedSent.authRequestId))).toEqual({ ...tooMany, errorCode: 'too_many_attempts' });
  });

  it('send limits are ResourceExhausted; with same-browser enforcement a link verifies only with its auth request id', async () => {
    const limited = await startTestServer({
      env: { RATE_LIMIT_EMAIL_PER_MINUTE: '1', PASSWORDLESS_ENFORCE_SAME_BROWSER: 'true', REDIRECT_ALLOW_LIST: 'http://shop.localhost/' },
    });
    try {
      const { scalekit } = await sdkFor(limited);
      const email = uniqueEmail('limit');
      const sent = await scalekit.passwordless.sendPasswordlessEmail(email, { magiclinkAuthUri: shop });
      expect(await sdkError(scalekit.passwordless.sendPasswordlessEmail(email))).toEqual({
        name: 'ScalekitTooManyRequestsException',
        grpcStatus: 8,
        httpStatus: 429,
        errorCode: 'email_rate_limited_minute',
      });
      const token = linkTokenOf((await limited.latestMail(email)).link);
      expect(await sdkError(scalekit.passwordless.verifyPasswordlessEmail({ linkToken: token }))).toMatchObject({ grpcStatus: 9, errorCode: 'different_browser' });
      expect((await scalekit.passwordless.verifyPasswordlessEmail({ linkToken: token }, sent.authRequestId)).email).toBe(email);
    } finally {
      await limited.stop();
    }
  }, 300_000);

  it('a failure after the mail was queued is Internal, never Unavailable: the SDK does not retry, one mail goes out', async () => {
    const { scalekit } = await sdkFor(server);
    const email = uniqueEmail('internal');
    await server.db.query('alter table hallpass.api_client_requests rename to api_client_requests_away');
    try {
      expect(await sdkError(scalekit.passwordless.sendPasswordlessEmail(email))).toEqual({
        name: 'ScalekitInternalServerException',
        grpcStatus: 13,
        httpStatus: 500,
        errorCode: 'internal',
      });
    } finally {
      await server.db.query('alter table hallpass.api_client_requests_away rename to api_client_requests');
    }
    expect(await count('select count(*)::int as n from hallpass.auth_requests where email = $1', [email])).toBe(1);
  });

  it('20 SDK instances at once: each fetches its token on its first call and all sends succeed', async () => {
    const { client, secret } = await sdkFor(server, { name: 'many' });
    const instances = Array.from({ length: 20 }, () => new Scalekit(server.url, client.id, secret));
    const before = await count('select count(*)::int as n from hallpass.api_client_tokens where client_id = $1', [client.id]);
    const sent = await Promise.all(instances.map((s, i) => s.passwordless.sendPasswordlessEmail(uniqueEmail(`many${i}`))));
    expect(new Set(sent.map((s) => s.authRequestId)).size).toBe(20);
    // No token revoked another: all 20 are live.
    expect(await count('select count(*)::int as n from hallpass.api_client_tokens where client_id = $1 and revoked_at is null', [client.id])).toBe(before + 20);
  });

  it('a revoked token: the SDK gets Unauthenticated, fetches a new token and the call succeeds', async () => {
    const { client, scalekit } = await sdkFor(server);
    await scalekit.passwordless.sendPasswordlessEmail(uniqueEmail('tok'));
    expect(await revokeApiClientTokens(server.deps, client.id)).toBe(1);
    const sent = await scalekit.passwordless.sendPasswordlessEmail(uniqueEmail('tok'));
    expect(sent.authRequestId).toBeTruthy();
    expect(await count('select count(*)::int as n from hallpass.api_client_tokens where client_id = $1', [client.id])).toBe(2);
  });

  it('a revoked client cannot get a token: /oauth/token answers 401 invalid_client, which the SDK throws as an AxiosError', async () => {
    const { client, scalekit } = await sdkFor(server);
    await scalekit.passwordless.sendPasswordlessEmail(uniqueEmail('gone'));
    await revokeApiClient(server.deps, client.id);
    const err = (await scalekit.passwordless.sendPasswordlessEmail(uniqueEmail('gone')).catch((e: unknown) => e)) as { name: string; response?: { status: number; data: unknown } };
    expect(err.name).toBe('AxiosError');
    expect(err.response?.status).toBe(401);
    expect(err.response?.data).toEqual({ error: 'invalid_client' });
  });
});
