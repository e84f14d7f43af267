import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { signInWithCode, startTestServer, uniqueEmail, type TestBrowser, type TestServer } from './harness.ts';
import { supabaseClient } from './supabase.ts';

let server: TestServer;
let anonKey: string;
let serviceKey: string;

// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  server = await startTestServer();
  anonKey = await signApiKey(server.deps, 'anon');
  serviceKey = await signApiKey(server.deps, 'service_role');
}, 300_000);
afterAll(() => server?.stop());

interface SignedIn {
  email: string;
  id: string;
  browser: TestBrowser;
  token: string;
  client: SupabaseClient;
}

/** Signs in through the real code flow and gives supabase-js the access JWT from the cookie. */
async function signIn(prefix = 'rest'): Promise<SignedIn> {
  const email = uniqueEmail(prefix);
  const browser = server.browser();
  const { user } = await signInWithCode(server, browser, email);
  const token = browser.cookies.get('hallpass-access')!;
  const client = supabaseClient(server.url, anonKey, token);
  return { email, id: user.id, browser, token, client };
}

const anonClient = () => supabaseClient(server.url, anonKey);
const serviceClient = () => supabaseClient(server.url, serviceKey);

describe('supabase-js against /rest/v1', () => {
  it('reads the own profile with select().eq(email).single()', async () => {
    const me = await signIn();
    const { data, error, status } = await me.client.from('profiles').select().eq('email', me.email).single();
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toMatchObject({ id: me.id, email: me.email, name: null, metadata: {} });
  });

  it('selects a column list with order, limit and offset', async () => {
    const me = await signIn();
    const { data, error } = await me.client.from('profiles').select('id, email').order('email', { ascending: false }).limit(5).range(0, 4);
    expect(error).toBeNull();
    expect(data).toEqual([{ id: me.id, email: me.email }]);
  });

  it('updates name and metadata and returns the row', async () => {
    const me = await signIn();
    const { data, error } = await me.client.from('profiles').update({ name: 'Ada', metadata: { plan: 'pro' } }).eq('id', me.id).select().single();
    expect(error).toBeNull();
    expect(data).toMatchObject({ id: me.id, name: 'Ada', metadata: { plan: 'pro' } });
    const audit = await me.client.from('audit_log').select('op, actor_role, actor_email, actor_sub').eq('op', 'UPDATE').order('id', { ascending: false }).limit(1).single();
    expect(audit.data).toEqual({ op: 'UPDATE', actor_role: 'authenticated', actor_email: me.email, actor_sub: me.id });
  });

  it('upserts the own profile on (tenant_id, email) with merge-duplicates, 200 as it only updated', async () => {
    const me = await signIn();
    const { data, error, status } = await me.client
      .from('profiles')
      .upsert({ email: me.email, name: 'Grace' }, { onConflict: 'tenant_id,email' })
      .select('id, name')
      .single();
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual({ id: me.id, name: 'Grace' });
  });

  it('refuses a change to a server-owned column with 403 42501 naming the column', async () => {
    const me = await signIn();
    for (const patch of [{ email: 'x@example.com' }, { tenant_id: '00000000-0000-0000-0000-000000000000' }, { last_login: null }, { created_at: '2020-01-01' }, { id: me.id }]) {
      const { error, status } = await me.client.from('profiles').update(patch).eq('id', me.id);
      expect(status).toBe(403);
      expect(error?.code).toBe('42501');
      expect(error?.message).toContain(Object.keys(patch)[0]);
      expect(error?.hint).toContain('name, metadata');
    }
  });

  it('shows nothing of a row the user may not see, whatever the filter', async () => {
    const me = await signIn();
    const other = await signIn('other');
    const byEmail = await me.client.from('profiles').select().eq('email', other.email);
    expect(byEmail.error).toBeNull();
    expect(byEmail.data).toEqual([]);
    const single = await me.client.from('profiles').select().eq('id', other.id).single();
    expect(single.status).toBe(406);
    expect(single.error?.code).toBe('PGRST116');
    const maybe = await me.client.from('profiles').select().eq('id', other.id).maybeSingle();
    expect(maybe.error).toBeNull();
    expect(maybe.data).toBeNull();
    const all = await me.client.from('profiles').select('id').in('id', [me.id, other.id]).neq('email', 'nobody@example.com');
    expect(all.data).toEqual([{ id: me.id }]);
    const upd = await me.client.from('profiles').update({ name: 'hijack' }).eq('id', other.id).select();
    expect(upd.data).toEqual([]);
    const del = await me.client.from('profiles').delete().eq('id', other.id);
    expect(del.status).toBe(403);
    const row = await server.db.query<{ name: string | null }>('select name from public.profiles where id = $1', [other.id]);
    expect(row.rows[0]!.name).toBeNull();
  });

  it('gives the anon key nothing on user data', async () => {
    const me = await signIn();
    const anon = anonClient();
    const read = await anon.from('profiles').select();
    expect(read.status).toBe(401);
    expect(read.error?.code).toBe('42501');
    const write = await anon.from('profiles').insert({ email: me.email });
    expect(write.status).toBe(401);
  });

  it('lets the service key do anything, and the audit trail says service_role', async () => {
    const me = await signIn();
    const svc = serviceClient();
    const { data, error } = await svc.from('profiles').update({ last_login: null, name: 'by-service' }).eq('id', me.id).select('name, last_login').single();
    expect(error).toBeNull();
    expect(data).toEqual({ name: 'by-service', last_login: null });
    const audit = await svc.from('audit_log').select('actor_role').eq('row_id', me.id).eq('op', 'UPDATE').order('id', { ascending: false }).limit(1).single();
    expect(audit.data).toEqual({ actor_role: 'service_role' });
  });

  it('reports unknown tables, columns and operators as 4xx in PostgREST shape', async () => {
    const me = await signIn();
    const table = await me.client.from('no_such_table').select();
    expect(table.status).toBe(404);
    expect(table.error?.code).toBe('PGRST205');
    const column = await me.client.from('profiles').select('nope');
    expect(column.status).toBe(400);
    expect(column.error?.code).toBe('PGRST204');
    const filter = await me.client.from('profiles').select().eq('nope', 1);
    expect(filter.error?.code).toBe('PGRST204');
    const internal = await me.client.from('sessions').select();
    expect(internal.status).toBe(404);
    const badValue = await me.client.from('profiles').select().eq('id', 'not-a-uuid');
    expect(badValue.status).toBe(400);
    expect(badValue.error?.code).toBe('22P02');
    const injection = await me.client.from('profiles').select().eq('email', "x' or '1'='1");
    expect(injection.data).toEqual([]);
    for (const k of ['code', 'message', 'details', 'hint']) expect(column.error).toHaveProperty(k);
  });

  it('reads with the session cookie when the bearer is the anon key', async () => {
    const me = await signIn();
    const res = await me.browser.get('/rest/v1/profiles?select=email', { apikey: anonKey, authorization: `Bearer ${anonKey}` });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([{ email: me.email }]);
  });

  it('serves an app-added table under its own policies, filters and all', async () => {
    const alice = await signIn('alice');
    const bob = await signIn('bob');
    await server.db.exec(`
      create table public.notes (
        id bigint generated always as identity primary key,
        owner uuid not null default auth.uid(),
        body text not null,
        stars int not null default 0,
        archived boolean
      );
      alter table public.notes enable row level security;
      alter table public.notes force row level security;
      create policy notes_own on public.notes for all to authenticated
        using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
      grant select, insert, delete on public.notes to authenticated;
      grant update (body, stars, archived) on public.notes to authenticated;
    `);
    const ins = await alice.client.from('notes').insert([{ body: 'milk', stars: 1 }, { body: 'eggs', stars: 5 }, { body: 'Tea', stars: 3 }]).select('id, body');
    expect(ins.error).toBeNull();
    expect(ins.status).toBe(201);
    expect(ins.data).toHaveLength(3);
    await bob.client.from('notes').insert({ body: 'bob secret', stars: 9 });

    const gt = await alice.client.from('notes').select('body').gt('stars', 1).order('stars');
    expect(gt.data).toEqual([{ body: 'Tea' }, { body: 'eggs' }]);
    const ilike = await alice.client.from('notes').select('body').ilike('body', 't%');
    expect(ilike.data).toEqual([{ body: 'Tea' }]);
    const like = await alice.client.from('notes').select('body').like('body', '%gg%');
    expect(like.data).toEqual([{ body: 'eggs' }]);
    const isNull = await alice.client.from('notes').select('body').is('archived', null).lte('stars', 1).gte('stars', 1).lt('stars', 2);
    expect(isNull.data).toEqual([{ body: 'milk' }]);
    const inList = await alice.client.from('notes').select('body').in('body', ['milk', 'bob secret']);
    expect(inList.data).toEqual([{ body: 'milk' }]);
    const page = await alice.client.from('notes').select('body', { count: 'exact' }).order('body').range(1, 1);
    expect(page.data).toEqual([{ body: 'eggs' }]);
    expect(page.count).toBe(3);

    const hijack = await alice.client.from('notes').update({ body: 'mine now' }).eq('body', 'bob secret').select();
    expect(hijack.data).toEqual([]);
    const del = await alice.client.from('notes').delete().eq('body', 'milk').select('body');
    expect(del.data).toEqual([{ body: 'milk' }]);
    const forged = await alice.client.from('notes').insert({ body: 'as bob', owner: bob.id });
    expect(forged.status).toBe(403);
    expect(forged.error?.code).toBe('42501');
    const bobs = await bob.client.from('notes').select('body');
    expect(bobs.data).toEqual([{ body: 'bob secret' }]);
  });

  it('answers the origin check and body limit in PostgREST shape', async () => {
    const me = await signIn();
    const res = await me.browser.request('PATCH', '/rest/v1/profiles?id=eq.' + me.id, {
      json: { name: 'x' },
      headers: { origin: 'https://evil.example', apikey: anonKey },
    });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'csrf_rejected', message: expect.any(String) });
  });

  it('speaks the rest of the dialect: no credentials, schemas, media types, logic trees, counts', async () => {
    const me = await signIn();
    const none = await fetch(`${server.url}/rest/v1/profiles`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'PGRST302' });
    const headers = { apikey: anonKey, authorization: `Bearer ${me.token}` };
    const schema = await fetch(`${server.url}/rest/v1/sessions`, { headers: { ...headers, 'accept-profile': 'hallpass' } });
    expect(schema.status).toBe(406);
    expect(await schema.json()).toMatchObject({ code: 'PGRST106' });
    const csv = await me.client.from('profiles').select('email').csv();
    expect(csv.status).toBe(200);
    expect(csv.data).toBe(`email\n${me.email}`);
    const xml = await fetch(`${server.url}/rest/v1/profiles`, { headers: { ...headers, accept: 'application/xml' } });
    expect(xml.status).toBe(406);
    expect(await xml.json()).toMatchObject({ code: 'PGRST107' });
    const tree = await me.client.from('profiles').select('email').or(`name.eq.a,email.eq.${me.email}`);
    expect(tree.data).toEqual([{ email: me.email }]);
    const bad = await me.client.from('profiles').select().or('name.eq.a,name.zz.b');
    expect(bad.status).toBe(400);
    expect(bad.error?.code).toBe('PGRST100');
    const counted = await me.client.from('profiles').select('id', { count: 'exact', head: true });
    expect(counted.status).toBe(200);
    expect(counted.count).toBe(1);
    const minimal = await fetch(`${server.url}/rest/v1/profiles?id=eq.${me.id}`, {
      method: 'PATCH',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'quiet' }),
    });
    expect(minimal.status).toBe(204);
  });

  it('ignores duplicates on request and rolls back a singular write that hits no row', async () => {
    const me = await signIn();
    const ignored = await me.client.from('profiles').upsert({ email: me.email, name: 'ignored' }, { onConflict: 'tenant_id,email', ignoreDuplicates: true }).select();
    expect(ignored.error).toBeNull();
    expect(ignored.data).toEqual([]);
    const none = await me.client.from('profiles').update({ name: 'nobody' }).eq('name', 'no such name').select().single();
    expect(none.status).toBe(406);
    expect(none.error?.code).toBe('PGRST116');
    const row = await me.client.from('profiles').select('name').single();
    expect(row.data).toEqual({ name: null });
  });

  it('renews an expired access cookie from the refresh cookie on /rest/v1', async () => {
    const me = await signIn();
    me.browser.cookies.set('hallpass-access', 'expired.or.garbage');
    const forged = await me.browser.get('/rest/v1/profiles?select=id', { apikey: anonKey });
    expect(forged.status).toBe(401);
    const again = await signIn();
    again.browser.cookies.delete('hallpass-access');
    const renewed = await again.browser.get('/rest/v1/profiles?select=id', { apikey: anonKey });
    expect(renewed.status).toBe(200);
    expect(renewed.body).toEqual([{ id: again.id }]);
    expect(renewed.headers.getSetCookie().some((c) => c.startsWith('hallpass-access='))).toBe(true);
  });

  it('answers CORS for allowed origins only, and varies on Origin', async () => {
    const me = await signIn();
    const origin = server.deps.config.baseUrl;
    const preflight = await fetch(`${server.url}/rest/v1/profiles`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'apikey, authorization, prefer' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('apikey');
    const headers = { apikey: anonKey, authorization: `Bearer ${me.token}` };
    const allowed = await fetch(`${server.url}/rest/v1/profiles?select=id`, { headers: { ...headers, origin } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(origin);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    const foreign = await fetch(`${server.url}/rest/v1/profiles?select=id`, { headers: { ...headers, origin: 'https://evil.example' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const none = await fetch(`${server.url}/rest/v1/profiles?select=id`, { headers });
    expect(none.status).toBe(200);
    expect(none.headers.get('access-control-allow-origin')).toBeNull();
    expect(none.headers.get('vary')).toContain('Origin');
  });
});
