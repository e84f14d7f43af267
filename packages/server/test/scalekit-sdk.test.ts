import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.ts';
import { linkTokenOf, sdkFor } from './scalekit-helpers.ts';

describe('the unmodified @scalekit-sdk/node against Hallpass over http', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { REDIRECT_ALLOW_LIST: 'http://shop.localhost/' } });
  });
  afterAll(() => server.stop());

  it('sends, then verifies a code: the verified email and state come back, no session cookie anywhere', async () => {
    const { scalekit } = await sdkFor(server);
    const sent = await scalekit.passwordless.sendPasswordlessEmail('Ada@Example.com', {
      template: 'SIGNIN',
      state: 'cart-42',
      expiresIn: 300,
      magiclinkAuthUri: 'http://shop.localhost/passwordless/verify',
    });
    expect(sent.authRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.expiresIn).toBe(300);
    expect(typeof sent.expiresAt).toBe('bigint');
    const mail = await server.latestMail('ada@example.com');
    expect(mail.link).toMatch(/^http:\/\/shop\.localhost\/passwordless\/verify\?link_token=/);
    const verified = await scalekit.passwordless.verifyPasswordlessEmail({ code: mail.code! }, sent.authRequestId);
    expect(verified.email).toBe('ada@example.com');
    expect(verified.state).toBe('cart-42');
    const { rows } = await server.db.query<{ n: number }>('select count(*)::int as n from hallpass.sessions');
    expect(rows[0]!.n).toBe(0);
  });

  it('verifies a magic link token without the auth request id (cross-device)', async () => {
    const { scalekit } = await sdkFor(server);
    await scalekit.passwordless.sendPasswordlessEmail('grace@example.com', { magiclinkAuthUri: 'http://shop.localhost/cb' });
    const mail = await server.latestMail('grace@example.com');
    const verified = await scalekit.passwordless.verifyPasswordlessEmail({ linkToken: linkTokenOf(mail.link) });
    expect(verified.email).toBe('grace@example.com');
  });
});
