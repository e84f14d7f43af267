import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { loadConfig } from '../src/config/config.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { metricsRoutes } from '../src/metrics/metrics.routes.ts';
import type { AppError } from '../src/shared/errors.ts';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from './harness.ts';

/** The value of one sample line (`name{labels} value`) in a Prometheus text exposition. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  let server: TestServer;
  const emails = [uniqueEmail('metrics'), uniqueEmail('metrics')];
  let scrape: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    for (const email of emails) {
      const browser = server.browser();
      const { user } = await signInWithCode(server, browser, email);
      secrets.push(user.id, ...browser.cookies.values());
    }
    // A limit refusal: the per-address minute limit is 2 by default.
    const b = server.browser();
    for (let i = 0; i < 3; i++) await b.post('/api/auth/passwordless/send', { email: emails[0] });
    await server.browser().post('/api/auth/passwordless/verify', { authRequestId: crypto.randomUUID(), code: '000000' });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    scrape = await res.text();
  }, 120_000);
  afterAll(() => server?.stop());

  it('counts sign-ins, sign-ups, sessions, sends and verifies by outcome, limiter refusals and mail', () => {
    console.log(scrape.split('\n').filter((l) => l.startsWith('hallpass_') && !l.includes('_bucket')).join('\n'));
    expect(sample(scrape, 'hallpass_sign_ins_total')).toBe(2);
    expect(sample(scrape, 'hallpass_sign_ups_total')).toBe(2);
    expect(sample(scrape, 'hallpass_sessions_created_total')).toBe(2);
    expect(sample(scrape, 'hallpass_passwordless_sends_total', 'outcome="ok"')).toBe(3);
    expect(sample(scrape, 'hallpass_passwordless_sends_total', 'outcome="email_rate_limited_minute"')).toBe(2);
    expect(sample(scrape, 'hallpass_rate_limit_refusals_total', 'limiter="email_minute"')).toBe(2);
    expect(sample(scrape, 'hallpass_passwordless_verifies_total', 'outcome="ok"')).toBe(2);
    expect(sample(scrape, 'hallpass_passwordless_verifies_total', 'outcome="auth_request_not_found"')).toBe(1);
    expect(sample(scrape, 'hallpass_mail_delivery_attempts_total')).toBeGreaterThanOrEqual(2);
    expect(sample(scrape, 'hallpass_mail_outbox_depth')).toBeGreaterThanOrEqual(0);
    expect(sample(scrape, 'hallpass_realtime_sockets')).toBe(0);
    expect(sample(scrape, 'hallpass_realtime_queued_events')).toBe(0);
    expect(sample(scrape, 'hallpass_http_responses_total', 'status="200"')).toBeGreaterThan(0);
    // Process defaults, event-loop lag among them.
    expect(sample(scrape, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(scrape, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    if (server.db.kind === 'postgres') expect(sample(scrape, 'hallpass_db_pool_max')).toBeGreaterThan(0);
  });

  it('names no email, id or token in any label or value', () => {
    for (const email of emails) expect(scrape).not.toContain(email);
    expect(scrape).not.toContain('@example.com');
    expect(scrape).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i);
    // JWTs (three base64url parts), and the very cookies and ids these sign-ins got.
    expect(scrape).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    for (const secret of secrets) expect(scrape).not.toContain(secret);
    for (const line of scrape.split('\n').filter((l) => l.startsWith('hallpass_'))) {
      expect(line, line).toMatch(/^hallpass_[a-z_]+(\{[a-z_]+="[A-Za-z0-9_.+]*"(,[a-z_]+="[A-Za-z0-9_.+]*")*\})? [0-9.e+-]+$|^hallpass_[a-z_]+ (NaN|[0-9.e+-]+)$/);
    }
  });

  it('names counters _total and durations _seconds, all under hallpass_', () => {
    const names = new Set([...scrape.matchAll(/^# TYPE (hallpass_\S+) (\w+)/gm)].map((m) => `${m[1]} ${m[2]}`));
    expect(names.size).toBeGreaterThan(20);
    for (const n of names) {
      const [name, type] = n.split(' ');
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (type === 'histogram') expect(name).toMatch(/_seconds$/);
    }
  });

  it('counts data API requests by method and status with their latency', async () => {
    await fetch(`${server.url}/rest/v1/profiles?select=id`);
    await fetch(`${server.url}/rest/v1/no_such_table`);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(sample(text, 'hallpass_rest_requests_total', 'method="GET",status="401"')).toBe(2);
    expect(sample(text, 'hallpass_rest_request_duration_seconds_count', 'method="GET"')).toBe(2);
  });
});

describe('who may read /metrics', () => {
  it('is open on a loopback address with no proxy in front, off when public or proxied without a token', () => {
    const base = { NODE_ENV: 'test', DEV_MAILBOX: 'false' };
    expect(loadConfig({ ...base, HOST: '127.0.0.1' }).metrics.access).toBe('open');
    expect(loadConfig({ ...base, HOST: '::1' }).metrics.access).toBe('open');
    expect(loadConfig({ ...base, HOST: '0.0.0.0' }).metrics.access).toBe('off');
    expect(loadConfig({ ...base, HOST: '127.0.0.1', TRUST_PROXY: 'true' }).metrics.access).toBe('off');
    expect(loadConfig({ ...base, HOST: '0.0.0.0', METRICS_TOKEN: 'a-metrics-token-of-length' }).metrics.access).toBe('token');
    expect(loadConfig({ ...base, HOST: '127.0.0.1', METRICS_ENABLED: 'false' }).metrics.access).toBe('off');
    expect(() => loadConfig({ ...base, METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
  });

  it('answers 401 without the bearer token (or a wrong one) and 200 with it; 404 when off', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const appFor = (env: Record<string, string>) =>
      new Hono()
        .route('/', metricsRoutes({ config: loadConfig({ NODE_ENV: 'test', DEV_MAILBOX: 'false', ...env }), metrics: createMetrics() }))
        .onError((err, c) => c.json({ code: (err as AppError).code }, (err as AppError).status as 401));
    const guarded = appFor({ METRICS_TOKEN: token });
    const none = await guarded.request('/metrics');
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ code: 'unauthenticated' });
    expect((await guarded.request('/metrics', { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await guarded.request('/metrics', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await appFor({ HOST: '0.0.0.0' }).request('/metrics')).status).toBe(404);
    expect((await appFor({ HOST: '127.0.0.1' }).request('/metrics')).status).toBe(200);
  });
});
