import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { supabaseClient } from './supabase.ts';

// APP_JWT_SECRET: user tokens the app's own backend signs (the Scalekit guide's "own JWT") are
// accepted by the data API as role authenticated, and nothing else signed with HS256 is.

const secret = 'an-app-jwt-secret-of-at-least-32-characters';
const sign = (claims: Record<string, unknown>, key = secret, exp: string | number = '5m') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setAudience('authenticated').setExpirationTime(exp).sign(new TextEncoder().encode(key));

describe('app user tokens (APP_JWT_SECRET)', () => {
  let server: TestServer;
  let anonKey: string;
  beforeAll(async () => {
    server = await startTestServer({ env: { APP_JWT_SECRET: secret } });
    anonKey = await signApiKey(server.deps, 'anon');
    await server.db.exec(`
      create table public.app_notes (id serial primary key, email text not null);
      alter table public.app_notes enable row level security;
      alter table public.app_notes force row level security;
      create policy own_notes on public.app_notes for select using (email = current_setting('request.jwt.claim.email'));
      grant select on public.app_notes to authenticated;
      insert into public.app_notes (email) values ('ada@example.com'), ('bob@example.com');
      notify pgrst, 'reload schema';`);
    // Starting a server (migrations on PGlite) takes long on a loaded machine.
  }, 300_000);
  afterAll(() => server?.stop());

  const read = async (token: string) => {
    const { data, error } = await supabaseClient(server.url, anonKey, token).from('app_notes').select('email');
    return { data, status: error ? (error as { code?: string }).code ?? 'error' : 'ok' };
  };

  it('a token the app signed with the secret reads as its email, under RLS', async () => {
    expect(await read(await sign({ role: 'authenticated', email: 'ada@example.com' }))).toEqual({ data: [{ email: 'ada@example.com' }], status: 'ok' });
  });

  it('refuses forged app tokens: another secret, expired, service_role, no email, HS256 signed with the public key', async () => {
    const publicPem = JSON.stringify(server.deps.signing.publicJwk);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ role: 'authenticated', email: 'ada@example.com', aud: 'authenticated', exp: 4102444800 })}`;
    const forged = {
      'other secret': await sign({ role: 'authenticated', email: 'ada@example.com' }, 'another-secret-that-is-32-characters-long'),
      expired: await sign({ role: 'authenticated', email: 'ada@example.com' }, secret, Math.floor(Date.now() / 1000) - 10),
      'service role': await sign({ role: 'service_role', email: 'ada@example.com' }),
      'no email': await sign({ role: 'authenticated' }),
      'public key as HMAC key': `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`,
    };
    for (const [name, token] of Object.entries(forged)) {
      const r = await read(token);
      expect({ name, status: r.status }).toEqual({ name, status: 'PGRST301' });
    }
  });

  it('without APP_JWT_SECRET no HS256 token is accepted', async () => {
    const plain = await startTestServer();
    try {
      const key = await signApiKey(plain.deps, 'anon');
      const { error } = await supabaseClient(plain.url, key, await sign({ role: 'authenticated', email: 'ada@example.com' })).from('profiles').select('email');
      expect((error as { code?: string } | null)?.code).toBe('PGRST301');
    } finally {
      await plain.stop();
    }
  }, 300_000);
});
