import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

let server: TestServer;
const logLines: string[] = [];
beforeAll(async () => {
  const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
  server = await startTestServer({ log: pino({ level: 'info' }, sink) });
});
afterAll(() => server?.stop());

const counts = async () =>
  (
    await server.db.query<{ r: number; m: number; p: number; s: number }>(
      `select (select count(*)::int from hallpass.auth_requests) as r, (select count(*)::int from hallpass.mail_outbox) as m,
              (select count(*)::int from public.profiles) as p, (select count(*)::int from hallpass.sessions) as s`,
    )
  ).rows[0]!;

const json = { 'content-type': 'application/json' };
const cases: Array<[name: string, path: string, body: string, headers: Record<string, string>, status: number, code: string]> = [
  ['malformed JSON', '/api/auth/passwordless/send', '{"email":', json, 400, 'invalid_json'],
  ['empty body', '/api/auth/passwordless/send', '', json, 400, 'invalid_json'],
  ['a number for email', '/api/auth/passwordless/send', '{"email":5}', json, 400, 'invalid_request'],
  ['missing email', '/api/auth/passwordless/send', '{}', json, 400, 'invalid_request'],
  ['an array body', '/api/auth/passwordless/send', '[]', json, 400, 'invalid_request'],
  ['an unknown field', '/api/auth/passwordless/send', '{"email":"a@example.com","admin":true}', json, 400, 'invalid_request'],
  ['a non-email', '/api/auth/passwordless/send', '{"email":"not-an-email"}', json, 400, 'invalid_email'],
  ['two @', '/api/auth/passwordless/send', '{"email":"a@b@example.com"}', json, 400, 'invalid_email'],
  ['a 10 KB email', '/api/auth/passwordless/send', JSON.stringify({ email: `${'a'.repeat(10_000)}@example.com` }), json, 400, 'invalid_email'],
  ['a body over 16 KB', '/api/auth/passwordless/send', JSON.stringify({ email: 'a@example.com', state: 'x'.repeat(17_000) }), json, 400, 'body_too_large'],
  ['a state over 1 KB', '/api/auth/passwordless/send', JSON.stringify({ email: 'a@example.com', state: 'x'.repeat(2000) }), json, 400, 'invalid_request'],
  ['text/plain', '/api/auth/passwordless/send', '{"email":"a@example.com"}', { 'content-type': 'text/plain' }, 400, 'unsupported_media_type'],
  ['a form post', '/api/auth/passwordless/send', 'email=a%40example.com', { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'unsupported_media_type'],
  ['a bad auth request id', '/api/auth/passwordless/verify', '{"authRequestId":"nope","code":"123456"}', json, 400, 'invalid_request'],
  ['a 5-digit code', '/api/auth/passwordless/verify', '{"authRequestId":"2f1f1ad4-4c2a-4a43-9a3e-6a0b6cf2a1a1","code":"12345"}', json, 400, 'invalid_request'],
  ['a code as a number', '/api/auth/passwordless/verify', '{"authRequestId":"2f1f1ad4-4c2a-4a43-9a3e-6a0b6cf2a1a1","code":123456}', json, 400, 'invalid_request'],
  ['code and link together', '/api/auth/passwordless/verify', '{"authRequestId":"2f1f1ad4-4c2a-4a43-9a3e-6a0b6cf2a1a1","code":"123456","linkToken":"aaaaaaaaaaaaaaaaaaaa"}', json, 400, 'invalid_request'],
  ['an unknown auth request', '/api/auth/passwordless/verify', '{"authRequestId":"2f1f1ad4-4c2a-4a43-9a3e-6a0b6cf2a1a1","code":"123456"}', json, 404, 'auth_request_not_found'],
  ['resend of an unknown request', '/api/auth/passwordless/resend', '{"authRequestId":"2f1f1ad4-4c2a-4a43-9a3e-6a0b6cf2a1a1"}', json, 404, 'auth_request_not_found'],
];

describe('bad input', () => {
  it.each(cases)('%s -> %i %s, nothing written', async (_name, path, body, headers, status, code) => {
    const before = await counts();
    const res = await server.browser().request('POST', path, { body, headers });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(typeof res.body.error.message).toBe('string');
    expect(await counts()).toEqual(before);
  });

  it('refuses a chunked body over 16 KB (no Content-Length to judge by) with body_too_large, nothing written', async () => {
    const before = await counts();
    const payload = new TextEncoder().encode(JSON.stringify({ email: 'a@example.com', state: 'x'.repeat(17_000) }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < payload.length; i += 4096) controller.enqueue(payload.subarray(i, i + 4096));
        controller.close();
      },
    });
    const res = await fetch(`${server.url}/api/auth/passwordless/send`, {
      method: 'POST',
      headers: { ...json, origin: server.browser().origin },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
    expect(await counts()).toEqual(before);
  });

  it('refuses bad profile patches with invalid_request and changes nothing', async () => {
    const browser = server.browser();
    await signInWithCode(server, browser, uniqueEmail());
    const before = (await browser.get('/api/profile')).body.profile;
    for (const patch of [{}, { name: 5 }, { email: 'x@example.com' }, { name: 'x'.repeat(300) }, { metadata: [1, 2] }, { id: before.id }]) {
      const res = await browser.patch('/api/profile', patch);
      expect(res.status, JSON.stringify(patch)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    expect((await browser.get('/api/profile')).body.profile).toEqual(before);
  });

  it('answers unknown routes with 404 not_found as JSON', async () => {
    const res = await server.browser().get('/api/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('turns an unexpected failure into 500 internal with no internals, logged with the request id', async () => {
    await server.db.query('alter table hallpass.auth_requests rename to auth_requests_moved');
    try {
      const res = await server.browser().post('/api/auth/passwordless/send', { email: uniqueEmail() });
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe('internal');
      expect(res.text).not.toMatch(/auth_requests|relation|stack|at /i);
      const requestId = res.headers.get('x-request-id')!;
      expect(res.body.error.requestId).toBe(requestId);
      expect(logLines.some((l) => l.includes(requestId) && l.includes('unhandled error'))).toBe(true);
    } finally {
      await server.db.query('alter table hallpass.auth_requests_moved rename to auth_requests');
    }
  });

  it('never writes codes or link tokens to the log', async () => {
    const email = uniqueEmail();
    const browser = server.browser();
    const sent = await browser.post('/api/auth/passwordless/send', { email });
    const mail = await server.latestMail(email);
    const token = new URL(mail.link!).searchParams.get('link_token')!;
    await browser.get(`/passwordless/verify?link_token=${token}`);
    await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
    const all = logLines.join('');
    expect(all).toContain('signed in');
    expect(all).not.toContain(token);
    expect(all).not.toContain(`"${mail.code}"`);
    expect(all).not.toContain(browser.cookies.get('hallpass-access')!);
  });
});
