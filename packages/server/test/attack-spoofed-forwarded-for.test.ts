import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';

// Attack (issue 9, finding 3): behind a proxy (TRUST_PROXY=true) the left-most X-Forwarded-For entry
// was taken as the client, so a client writing `X-Forwarded-For: 203.0.113.N` itself got a fresh
// per-IP send limit with every request. Here the test's socket (127.0.0.1) plays the proxy: it appends
// the address it saw (the attacker's real one) to whatever the client sent, as nginx does with
// $proxy_add_x_forwarded_for.
const limits = { RATE_LIMIT_IP_PER_10_MINUTES: '3', RATE_LIMIT_EMAIL_PER_MINUTE: '100', RATE_LIMIT_EMAIL_PER_HOUR: '100' };

async function sendRotatingSpoofedEntries(server: TestServer, realClient: string, proxiesAfter: string[]) {
  const browser = server.browser();
  const statuses: Array<{ status: number; code?: string; retryAfter: string | null }> = [];
  for (let i = 1; i <= 5; i++) {
    const forwarded = [`203.0.113.${i}`, realClient, ...proxiesAfter].join(', ');
    const res = await browser.post('/api/auth/passwordless/send', { email: uniqueEmail('xff') }, { 'x-forwarded-for': forwarded });
    statuses.push({ status: res.status, ...(res.status === 200 ? {} : { code: res.body.error.code }), retryAfter: res.headers.get('retry-after') });
  }
  return statuses;
}

function expectLimitedAfterThree(statuses: Awaited<ReturnType<typeof sendRotatingSpoofedEntries>>) {
  expect(statuses.map((s) => s.status)).toEqual([200, 200, 200, 429, 429]);
  expect(statuses[3]!.code).toBe('ip_rate_limited');
  expect(Number(statuses[3]!.retryAfter)).toBeGreaterThan(0);
}

describe('attack: a client rotates a spoofed X-Forwarded-For entry to dodge the per-IP send limit', () => {
  describe('TRUST_PROXY=true (one hop)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ env: { TRUST_PROXY: 'true', ...limits } });
    });
    afterAll(() => server?.stop());

    it('still hits the per-IP limit (429 ip_rate_limited): the client is the right-most entry, the one our proxy wrote', async () => {
      expectLimitedAfterThree(await sendRotatingSpoofedEntries(server, '198.51.100.7', []));
      const { rows } = await server.db.query<{ ip: string }>('select distinct ip from hallpass.auth_requests');
      expect(rows.map((r) => r.ip)).toEqual(['198.51.100.7']);
    });
  });

  describe('TRUST_PROXY as a list of proxy addresses and ranges', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ env: { TRUST_PROXY: 'loopback, 10.0.0.0/8, fd00::/8', ...limits } });
    });
    afterAll(() => server?.stop());

    it('walks back over every trusted proxy to the first address that is not one, and limits that', async () => {
      expectLimitedAfterThree(await sendRotatingSpoofedEntries(server, '198.51.100.8', ['10.0.0.5', 'fd00::17']));
    });

    it('ignores trusted-looking addresses the client wrote left of the real one', async () => {
      const browser = server.browser();
      await browser.post('/api/auth/passwordless/send', { email: uniqueEmail('xff') }, { 'x-forwarded-for': '10.1.1.1, 198.51.100.9, 10.0.0.5' });
      const { rows } = await server.db.query<{ ip: string }>("select ip from hallpass.auth_requests where ip like '%.9'");
      expect(rows.map((r) => r.ip)).toEqual(['198.51.100.9']);
    });
  });
});
