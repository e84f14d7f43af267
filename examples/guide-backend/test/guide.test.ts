import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeChannel } from '@supabase/supabase-js';
import { startTestServer, uniqueEmail, type TestServer } from '../../../packages/server/test/harness.ts';
import { supabaseClient } from '../../../packages/server/test/supabase.ts';
import { createApiClient } from '../../../packages/server/src/scalekit/clients.service.ts';
import { signApiKey } from '../../../packages/server/src/sessions/api-keys.ts';

// The guide's backend, unchanged, talks to Hallpass as if it were Scalekit (the SDK) and Supabase
// (supabase-js with the service key). Only environment variables point it here.

const jwtSecret = 'the-guide-backends-jwt-secret-of-32-chars-or-more';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('the guide backend against Hallpass', () => {
  let hallpass: TestServer;
  let backend: ChildProcess;
  let appUrl: string;
  let anonKey: string;
  let channel: RealtimeChannel;
  const syncs: string[] = [];
  const waiters: Array<() => void> = [];

  beforeAll(async () => {
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    hallpass = await startTestServer({
      env: {
        APP_MIGRATIONS_DIR: new URL('../migrations', import.meta.url).pathname,
        REDIRECT_ALLOW_LIST: appUrl,
        APP_JWT_SECRET: jwtSecret,
        RATE_LIMIT_EMAIL_PER_MINUTE: '20',
      },
    });
    const { client, secret } = await createApiClient(hallpass.deps, { name: 'guide-backend' });
    anonKey = await signApiKey(hallpass.deps, 'anon');
    backend = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: new URL('..', import.meta.url).pathname,
      env: {
        ...process.env,
        PORT: String(port),
        APP_BASE_URL: appUrl,
        // The three the guide uses, now pointing at Hallpass.
        SCALEKIT_URL: hallpass.url,
        SCALEKIT_CLIENT_ID: client.id,
        SCALEKIT_CLIENT_SECRET: secret,
        // Supabase's, also Hallpass.
        SUPABASE_URL: hallpass.url,
        SUPABASE_SERVICE_ROLE_KEY: await signApiKey(hallpass.deps, 'service_role'),
        SUPABASE_ANON_KEY: anonKey,
        SUPABASE_JWT_SECRET: jwtSecret,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      backend.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      backend.once('exit', (code) => reject(new Error(`guide backend exited ${code}`)));
    });
    // The guide's client: a broadcast subscription for profile_sync.
    channel = supabaseClient(hallpass.url, anonKey)
      .channel('broadcast')
      .on('broadcast', { event: 'profile_sync' }, (m) => {
        syncs.push((m.payload as { email: string }).email);
        waiters.splice(0).forEach((w) => w());
      });
    await new Promise<void>((resolve) => channel.subscribe((status) => status === 'SUBSCRIBED' && resolve()));
    // Someone else's profile, which the signed-in user must never see.
    await hallpass.db.query(`insert into public.profiles (email) values ('someone-else@example.com')`);
    // Starting a server (migrations on PGlite) takes long on a loaded machine.
  }, 300_000);
  afterAll(async () => {
    await channel?.unsubscribe();
    backend?.kill();
    await hallpass?.stop();
  });

  const synced = (email: string) =>
    new Promise<void>((resolve) => {
      const check = () => (syncs.includes(email) ? resolve() : waiters.push(check));
      check();
    });
  const post = (path: string, body: unknown) =>
    fetch(`${appUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const profileWith = async (cookie: string) => (await (await fetch(`${appUrl}/api/profile`, { headers: { cookie } })).json()) as { profiles: Array<{ email: string; last_verified: string | null }> };

  it('signs in by code: Scalekit SDK send and verify, profile synced, broadcast received, RLS shows only the own profile', async () => {
    const email = uniqueEmail('guide-code');
    const sent = (await (await post('/api/auth/passwordless/send', { email })).json()) as { authRequestId: string; expiresIn: number };
    expect(sent.expiresIn).toBe(300);
    const mail = await hallpass.latestMail(email);
    expect(mail.subject).toMatch(/sign-in code/);
    const arrived = synced(email);
    const verified = await post('/api/auth/passwordless/verify', { code: mail.code, authRequestId: sent.authRequestId });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toEqual({ email });
    await arrived;
    const cookie = verified.headers.get('set-cookie')!.split(';')[0]!;
    const { profiles } = await profileWith(cookie);
    expect(profiles).toHaveLength(1);
    expect(profiles[0]!.email).toBe(email);
    expect(profiles[0]!.last_verified).not.toBeNull();
  });

  it('signs in by magic link: the link points at the guide backend, which verifies it headless', async () => {
    const email = uniqueEmail('guide-link');
    await post('/api/auth/passwordless/send', { email });
    const mail = await hallpass.latestMail(email);
    expect(mail.link!.startsWith(`${appUrl}/passwordless/verify?link_token=`)).toBe(true);
    const arrived = synced(email);
    const res = await fetch(mail.link!, { redirect: 'manual' });
    expect(res.status).toBe(303);
    await arrived;
    const { profiles } = await profileWith(res.headers.get('set-cookie')!.split(';')[0]!);
    expect(profiles.map((p) => p.email)).toEqual([email]);
  });

  it('a wrong code is refused and opens no session', async () => {
    const email = uniqueEmail('guide-wrong');
    const sent = (await (await post('/api/auth/passwordless/send', { email })).json()) as { authRequestId: string };
    const mail = await hallpass.latestMail(email);
    const res = await post('/api/auth/passwordless/verify', { code: mail.code === '000000' ? '000001' : '000000', authRequestId: sent.authRequestId });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'otp_invalid' });
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});
