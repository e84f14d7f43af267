import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClientsCommand } from '../src/scalekit/clients.cli.ts';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

// Attack: the per-address budget of wrong codes (issue 9, finding 6) guarded only Hallpass's own
// verify. Scalekit's headless verify (an API client's backend relaying what its users type, e.g.
// the guide's backend) checked codes with a copy of the older checks, so an attacker could keep
// guessing one address's codes through that door. Both doors now share hallpass.check_code
// (migration 0020): the wrong codes of both count against one budget, and past it both refuse.

let server: TestServer;
let accessToken: string;

beforeAll(async () => {
  server = await startTestServer({ env: { RATE_LIMIT_EMAIL_PER_MINUTE: '100', RATE_LIMIT_EMAIL_PER_HOUR: '100', RATE_LIMIT_CLIENT_PER_10_MINUTES: '1000' } });
  const lines: string[] = [];
  expect(await runClientsCommand(server.deps, ['create', '--name', 'guessing-door', '--json'], (l) => lines.push(l))).toBe(0);
  const client = JSON.parse(lines[0]!) as { id: string; secret: string };
  const res = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&client_id=${encodeURIComponent(client.id)}&client_secret=${encodeURIComponent(client.secret)}`,
  });
  accessToken = ((await res.json()) as { access_token: string }).access_token;
}, 300_000);
afterAll(() => server?.stop());

const wrongFor = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');
const api = (path: string, body: unknown) =>
  fetch(`${server.url}/api/v1/passwordless/email/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify(body),
  });

async function send(email: string) {
  const sent = await api('send', { email });
  expect(sent.status).toBe(200);
  const { auth_request_id } = (await sent.json()) as { auth_request_id: string };
  return { authRequestId: auth_request_id, code: (await server.latestMail(email)).code! };
}

describe('attack: guessing one address\'s codes through the Scalekit API', () => {
  it('spends the same per-address budget as Hallpass\'s own verify and refuses past it, even the right code', async () => {
    const victim = uniqueEmail('victim');
    // 20 wrong codes through the API client's door, five per request.
    for (let r = 0; r < 4; r++) {
      const { authRequestId, code } = await send(victim);
      for (let i = 0; i < 5; i++) {
        const res = await api('verify', { auth_request_id: authRequestId, code: wrongFor(code) });
        expect(res.status).toBe(400);
      }
    }
    // Past the budget: the right code is refused through this door...
    const fifth = await send(victim);
    const refused = await api('verify', { auth_request_id: fifth.authRequestId, code: fifth.code });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // ...and through Hallpass's own door, since it is one budget per address.
    const browser = server.browser();
    const own = await browser.post('/api/auth/passwordless/send', { email: victim });
    const mail = await server.latestMail(victim);
    const viaOwnDoor = await browser.post('/api/auth/passwordless/verify', { authRequestId: own.body.authRequestId, code: mail.code });
    expect(viaOwnDoor.status).toBe(429);
    expect(viaOwnDoor.body.error.code).toBe('too_many_attempts');
  });
});
