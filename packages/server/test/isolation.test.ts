import { asUser, type Claims, type Tx } from '@hallpass/db';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { signAccessToken, type AccessClaims } from '../src/sessions/sessions.service.ts';
import { manualClock, signInWithCode, startTestServer, type TestServer } from './harness.ts';
import { seedUsers, type SeededUser } from './seed.ts';
import { supabaseClient } from './supabase.ts';

// The isolation proof: 100 users in two tenants (ten addresses in both), each trying every way in
// (/api/profile, /rest/v1 through supabase-js, SQL under its own claims) to read, change, create or
// delete anyone else's row. Nothing may leak and nothing may change; each user's own row works.

const defaultTenant = '00000000-0000-0000-0000-000000000000';
const shared = 10;
const perTenant = 50;

type User = SeededUser;

let server: TestServer;
let anonKey: string;
let betaTenant: string;
let users: User[] = [];

/** 50 users per tenant; the first ten addresses exist in both. */
function createUsers(): Promise<User[]> {
  const specs = [
    ...Array.from({ length: perTenant }, (_, i) => ({ email: `u${i}@iso.test`, tenantId: defaultTenant })),
    ...Array.from({ length: perTenant }, (_, i) => ({ email: i < shared ? `u${i}@iso.test` : `b${i}@iso.test`, tenantId: betaTenant })),
  ];
  return seedUsers(server.deps, server.db, specs);
}

/** Runs `fn` for every item, `width` at a time. */
async function eachLimited<T>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** Expects `sql` to fail with `state` inside a savepoint, so the transaction goes on. */
async function expectRefused(tx: Tx, state: string, sql: string, params: unknown[]): Promise<void> {
  await tx.query('savepoint attempt');
  let code: string | undefined;
  try {
    await tx.query(sql, params);
  } catch (err) {
    code = (err as { code?: string }).code;
  }
  await tx.query('rollback to savepoint attempt');
  expect(code, sql).toBe(state);
}

async function snapshot() {
  const { rows } = await server.db.query<{ id: string; email: string; tenant_id: string; name: string | null }>(
    'select id, email, tenant_id, name from public.profiles order by id',
  );
  return rows;
}

beforeAll(async () => {
  server = await startTestServer();
  anonKey = await signApiKey(server.deps, 'anon');
  betaTenant = (await server.db.query<{ id: string }>(`insert into public.tenants (slug, name) values ('beta', 'Beta') returning id`)).rows[0]!.id;
  users = await createUsers();
});
afterAll(() => server?.stop());

describe('isolation of 100 users in 2 tenants', () => {
  it('has the same address in both tenants as two separate profiles', () => {
    expect(users).toHaveLength(2 * perTenant);
    const twins = users.filter((u) => u.email === 'u0@iso.test');
    expect(twins.map((u) => u.tenantId).sort()).toEqual([defaultTenant, betaTenant].sort());
    expect(twins[0]!.id).not.toBe(twins[1]!.id);
  });

  it('through SQL under their own claims, nobody reads, changes, creates or deletes another row', async () => {
    const before = await snapshot();
    for (const u of users) {
      await asUser(server.db, u.claims, async (tx) => {
        const seen = await tx.query<{ id: string }>('select id from public.profiles');
        expect(seen.rows).toEqual([{ id: u.id }]);
        expect((await tx.query('update public.profiles set name = $2 where id <> $1', [u.id, 'pwned'])).rowCount).toBe(0);
        expect((await tx.query('select 1 from public.audit_log where row_id <> $1', [u.id])).rowCount).toBe(0);
        expect((await tx.query<{ id: string }>('select id from public.tenants')).rows).toEqual([{ id: u.tenantId }]);
        // Clients never delete profiles (no privilege), their own included.
        await expectRefused(tx, '42501', 'delete from public.profiles where id <> $1', [u.id]);
        await expectRefused(tx, '42501', 'delete from public.profiles where id = $1', [u.id]);
        const other = users.find((o) => o.id !== u.id && o.email !== u.email)!;
        await expectRefused(tx, '42501', 'insert into public.profiles (email) values ($1)', [other.email]);
        await expectRefused(tx, '42501', 'insert into public.profiles (email, tenant_id) values ($1, $2)', [u.email, other.tenantId]);
        await expectRefused(tx, '42501', 'update public.profiles set email = $2 where id = $1', [u.id, other.email]);
        const own = await tx.query('update public.profiles set name = $2 where id = $1', [u.id, `sql-${u.id}`]);
        expect(own.rowCount).toBe(1);
      });
    }
    const after = await snapshot();
    expect(after.map(({ name: _n, ...r }) => r)).toEqual(before.map(({ name: _n, ...r }) => r));
    for (const row of after) expect(row.name).toBe(`sql-${row.id}`);
  }, 120_000);

  it('through /api/profile, each user gets and changes only their own row', async () => {
    await eachLimited(users, 8, async (u) => {
      const headers = { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' };
      const got = await fetch(`${server.url}/api/profile`, { headers });
      expect(got.status).toBe(200);
      const body = (await got.json()) as { profile: { id: string; tenantId: string } };
      expect(body.profile).toMatchObject({ id: u.id, tenantId: u.tenantId });
      const patched = await fetch(`${server.url}/api/profile`, { method: 'PATCH', headers, body: JSON.stringify({ name: `api-${u.id}` }) });
      expect(patched.status).toBe(200);
      // The body may not name the row, the email or the tenant.
      const sneaky = await fetch(`${server.url}/api/profile`, { method: 'PATCH', headers, body: JSON.stringify({ name: 'x', id: users[0]!.id }) });
      expect(sneaky.status).toBe(400);
    });
    for (const row of await snapshot()) expect(row.name).toBe(`api-${row.id}`);
  }, 120_000);

  it('through /rest/v1 with supabase-js, nothing of another user leaks or changes', async () => {
    const before = await snapshot();
    const ids = users.map((u) => u.id);
    await eachLimited(users, 8, async (u, i) => {
      const client = supabaseClient(server.url, anonKey, u.token);
      const others = ids.filter((id) => id !== u.id);
      // No filter: every row the user could reach. Exactly their own comes back.
      const all = await client.from('profiles').select('id, email, tenant_id');
      expect(all.data).toEqual([{ id: u.id, email: u.email, tenant_id: u.tenantId }]);
      const upd = await client.from('profiles').update({ name: 'pwned' }).in('id', others).select('id');
      expect(upd.data).toEqual([]);
      const del = await client.from('profiles').delete().in('id', others);
      expect(del.status).toBe(403);
      const other = users[(i + 7) % users.length]!;
      const ins = await client.from('profiles').insert({ email: other.email === u.email ? 'someone@iso.test' : other.email });
      expect(ins.status).toBe(403);
      if (i % 5 === 0) {
        const ups = await client.from('profiles').upsert({ email: other.email, name: 'pwned' }, { onConflict: 'tenant_id,email' });
        expect(ups.status).toBe(403);
        const twin = await client.from('profiles').select('id').eq('email', u.email).neq('tenant_id', u.tenantId);
        expect(twin.data).toEqual([]);
      }
      const own = await client.from('profiles').update({ name: `rest-${u.id}` }).eq('id', u.id).select('id').single();
      expect(own.data).toEqual({ id: u.id });
    });
    const after = await snapshot();
    expect(after.map(({ name: _n, ...r }) => r)).toEqual(before.map(({ name: _n, ...r }) => r));
    for (const row of after) expect(row.name).toBe(`rest-${row.id}`);
    const { rows } = await server.db.query<{ n: number }>(
      `select count(*)::int as n from public.audit_log where actor_role = 'authenticated' and actor_sub <> row_id::text`,
    );
    expect(rows[0]!.n).toBe(0);
  }, 120_000);
});

describe('role and claims stay inside the request', () => {
  it('leaves no role or claims on the connections after /rest/v1 requests', async () => {
    const u = users[1]!;
    const client = supabaseClient(server.url, anonKey, u.token);
    await Promise.all(Array.from({ length: 10 }, () => client.from('profiles').select('id')));
    const { rows: [own] } = await server.db.query<{ u: string }>('select session_user as u');
    const seen = await Promise.all(
      Array.from({ length: 10 }, () =>
        server.db.query<{ u: string; c: string }>(`select current_user as u, coalesce(current_setting('request.jwt.claims', true), '') as c`),
      ),
    );
    for (const { rows } of seen) expect(rows[0]).toEqual({ u: own!.u, c: '' });
  });
});

describe('forged and broken tokens', () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const victim = () => users[3]!;

  async function forgeries(): Promise<Record<string, string>> {
    const v = victim();
    const { privateKey } = await generateKeyPair('ES256');
    const header = { alg: 'ES256', kid: server.deps.signing.kid, typ: 'JWT' };
    const [h, , sig] = v.token.split('.');
    const publicPem = await exportSPKI(server.deps.signing.publicKey);
    const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(v.claims)}`;
    const past = manualClock(new Date(Date.now() - 2 * 3600_000));
    const expired = await signAccessToken({ ...server.deps, clock: past }, { id: v.id, email: v.email, tenant_id: v.tenantId }, { id: v.claims.session_id, amr: v.claims.amr });
    const twinInBeta = users.find((u) => u.email === v.email && u.tenantId !== v.tenantId);
    return {
      'wrong key': await new SignJWT({ ...v.claims }).setProtectedHeader(header).sign(privateKey),
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(v.claims)}.`,
      'HS256 signed with the public key': `${hsInput}.${createHmac('sha256', publicPem).update(hsInput).digest('base64url')}`,
      expired: expired.token,
      'tampered email': `${h}.${b64({ ...v.claims, email: users[4]!.email })}.${sig}`,
      'tampered role': `${h}.${b64({ ...v.claims, role: 'service_role' })}.${sig}`,
      "another tenant's claims": `${h}.${b64({ ...v.claims, app_metadata: { ...v.claims.app_metadata, tenant_id: twinInBeta?.tenantId ?? betaTenant } })}.${sig}`,
      'the anon key as a user token': anonKey,
      garbage: 'not.a.jwt',
    };
  }

  it('refuses each with 401 on /api/profile and /rest/v1, and shows no row', async () => {
    for (const [name, token] of Object.entries(await forgeries())) {
      const api = await fetch(`${server.url}/api/profile`, { headers: { authorization: `Bearer ${token}` } });
      expect(api.status, `/api/profile: ${name}`).toBe(401);
      const cookie = await fetch(`${server.url}/api/profile`, { headers: { cookie: `hallpass-access=${token}` } });
      expect(cookie.status, `/api/profile cookie: ${name}`).toBe(401);
      if (token === anonKey) continue;
      const rest = await fetch(`${server.url}/rest/v1/profiles?select=*`, { headers: { apikey: anonKey, authorization: `Bearer ${token}` } });
      expect(rest.status, `/rest/v1: ${name}`).toBe(401);
      const body = await rest.text();
      expect(body).not.toContain(victim().email);
      const restCookie = await fetch(`${server.url}/rest/v1/profiles?select=*`, { headers: { apikey: anonKey, cookie: `hallpass-access=${token}` } });
      expect(restCookie.status, `/rest/v1 cookie: ${name}`).toBe(401);
    }
  });

  it('refuses a JWT in the wrong cookie, and a forged apikey', async () => {
    const v = victim();
    const serviceKey = await signApiKey(server.deps, 'service_role');
    const cases: Array<[string, Record<string, string>]> = [
      ['access token in the refresh cookie', { cookie: `hallpass-refresh=${v.token}` }],
      ['service key in the access cookie', { cookie: `hallpass-access=${serviceKey}` }],
      ['anon key in the access cookie', { cookie: `hallpass-access=${anonKey}` }],
    ];
    for (const [name, headers] of cases) {
      expect((await fetch(`${server.url}/api/profile`, { headers })).status, name).toBe(401);
      expect((await fetch(`${server.url}/rest/v1/profiles`, { headers: { ...headers, apikey: anonKey } })).status, name).toBe(401);
    }
    const forgedKey = `${anonKey.split('.')[0]}.${b64({ role: 'service_role', iss: server.deps.config.issuer, iat: 1, exp: 4_000_000_000 })}.${anonKey.split('.')[2]}`;
    const res = await fetch(`${server.url}/rest/v1/profiles`, { headers: { apikey: forgedKey, authorization: `Bearer ${forgedKey}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('PGRST301');
  });

  it('refuses a well-signed token whose session was revoked', async () => {
    const v = users[5]!;
    await server.db.query(`update hallpass.sessions set revoked_at = now(), revoked_reason = 'revoked_by_admin' where id = $1`, [v.claims.session_id]);
    const rest = await fetch(`${server.url}/rest/v1/profiles`, { headers: { apikey: anonKey, authorization: `Bearer ${v.token}` } });
    expect(rest.status).toBe(401);
    expect((await fetch(`${server.url}/api/profile`, { headers: { authorization: `Bearer ${v.token}` } })).status).toBe(401);
  });
});

describe('claims settings and the service role', () => {
  it('denies (never errors) when request.jwt.claims is missing or malformed', async () => {
    const v = users[0]!;
    const settings = ['', 'not json', '[]', '"text"', '42', '{"email": 42}', `{"sub": "x", "email": "${v.email}"}`, '{"app_metadata": "x"}', `{"email": "${v.email}", "app_metadata": {"tenant_id": "nope"}}`];
    for (const raw of settings) {
      const row = await server.db.transaction(async (tx) => {
        await tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [raw]);
        const seen = await tx.query<{ n: number }>('select count(*)::int as n from public.profiles');
        const helpers = await tx.query<{ uid: string | null; email: string | null; tenant: string | null; role: string | null }>(
          'select auth.uid() as uid, auth.email() as email, auth.tenant_id() as tenant, auth.role() as role',
        );
        const updated = await tx.query('update public.profiles set name = name');
        return { n: seen.rows[0]!.n, helpers: helpers.rows[0]!, updated: updated.rowCount };
      });
      expect(row.n, raw).toBe(0);
      expect(row.updated, raw).toBe(0);
      expect(row.helpers.uid, raw).toBeNull();
      expect(row.helpers.tenant, raw).toBeNull();
    }
    // Never set at all in this transaction.
    const unset = await server.db.transaction(async (tx) => {
      await tx.query(`select set_config('role', 'authenticated', true)`);
      return (await tx.query<{ n: number }>('select count(*)::int as n from public.profiles')).rows[0]!.n;
    });
    expect(unset).toBe(0);
  });

  it('gives anon nothing on user data, even with a victim\'s claims', async () => {
    const v = users[0]!;
    const claims = { ...v.claims, role: 'anon' } as unknown as Claims;
    for (const sql of ['select * from public.profiles', 'select * from public.audit_log', 'select * from public.tenants']) {
      await expect(asUser(server.db, claims, (tx) => tx.query(sql))).rejects.toMatchObject({ code: '42501' });
    }
  });

  it('keeps the service-role sign-in sync working, and the audit trail names service_role', async () => {
    const email = 'sync@iso.test';
    const first = await signInWithCode(server, server.browser(), email);
    await signInWithCode(server, server.browser(), email);
    const { rows } = await server.db.query<{ op: string; actor_role: string }>(
      'select op, actor_role from public.audit_log where row_id = $1 order by id',
      [first.user.id],
    );
    expect(rows).toEqual([
      { op: 'INSERT', actor_role: 'service_role' },
      { op: 'UPDATE', actor_role: 'service_role' },
    ]);
  });
});

describe('tenants at sign-in', () => {
  it('signs one address into two tenants as two profiles, the JWT carrying each tenant', async () => {
    const email = 'both@iso.test';
    const inDefault = server.browser();
    const a = await signInWithCode(server, inDefault, email);
    const inBeta = server.browser();
    const sent = await inBeta.post('/api/auth/passwordless/send', { email, tenant: 'beta' });
    expect(sent.status).toBe(200);
    const mail = await server.latestMail(email);
    const verified = await inBeta.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
    expect(verified.status).toBe(200);
    expect(verified.body.user.id).not.toBe(a.user.id);
    expect(verified.body.user.tenantId).toBe(betaTenant);
    const claims = JSON.parse(Buffer.from(inBeta.cookies.get('hallpass-access')!.split('.')[1]!, 'base64url').toString()) as AccessClaims;
    expect(claims.app_metadata.tenant_id).toBe(betaTenant);
    expect((await inDefault.get('/api/profile')).body.profile.tenantId).toBe(defaultTenant);
  });

  it('refuses an unknown tenant slug with unknown_tenant', async () => {
    const res = await server.browser().post('/api/auth/passwordless/send', { email: 'x@iso.test', tenant: 'nope' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown_tenant');
  });

  it("uses the host's tenant from TENANT_HOSTS when the body names none", async () => {
    const config = { ...server.deps.config, tenantHosts: { 'beta.shop.test': 'beta' } };
    const app = createApp({ ...server.deps, config });
    const res = await app.request('http://beta.shop.test/api/auth/passwordless/send', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'host@iso.test' }),
    });
    expect(res.status).toBe(200);
    const { authRequestId } = (await res.json()) as { authRequestId: string };
    const { rows } = await server.db.query<{ tenant_id: string }>('select tenant_id from hallpass.auth_requests where id = $1', [authRequestId]);
    expect(rows[0]!.tenant_id).toBe(betaTenant);
  });
});
