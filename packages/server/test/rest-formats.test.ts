import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './rest-fixture.ts';

// Media types and schemas as PostgREST documents them (api.md "Response Formats", "Schemas",
// references/schema_cache.md "Schema Cache Reloading").
let f: Fixture;
// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  f = await startFixture({ env: { REST_SCHEMAS: 'public,api' } });
  await f.server.db.exec(`
    create schema api;
    grant usage on schema api to anon, authenticated, service_role;
    create table api.items (id integer primary key, name text not null);
    insert into api.items values (1, 'from api');
    grant select, insert on api.items to anon, authenticated;
  `);
}, 300_000);
afterAll(() => f?.server.stop());

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${f.server.url}/rest/v1/${path}`, { headers: { apikey: f.anonKey, ...headers } });

describe('formats', () => {
  it('answers text/csv', async () => {
    const { data, status } = await f.anon.from('users').select('id, name, mood').order('id').csv();
    expect(status).toBe(200);
    expect(data).toBe('id,name,mood\n1,Ada,happy\n2,Grace,meh\n3,Linus,');
    const res = await get('tags?select=label&id=eq.1', { accept: 'text/csv' });
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
  });

  it('answers vnd.pgrst.object+json, with nulls stripped on request', async () => {
    const res = await get('users?select=id,mood&id=eq.3', { accept: 'application/vnd.pgrst.object+json' });
    expect(res.headers.get('content-type')).toMatch(/^application\/vnd\.pgrst\.object\+json;/);
    expect(await res.json()).toEqual({ id: 3, mood: null });
    const stripped = await get('users?select=id,mood&id=eq.3', { accept: 'application/vnd.pgrst.object+json;nulls=stripped' });
    expect(await stripped.json()).toEqual({ id: 3 });
    const many = await get('users?select=id', { accept: 'application/vnd.pgrst.object+json' });
    expect(many.status).toBe(406);
    expect(await many.json()).toMatchObject({ code: 'PGRST116', details: 'The result contains 3 rows' });
  });

  it('answers vnd.pgrst.array+json;nulls=stripped without the null keys', async () => {
    const res = await get('users?select=id,mood&order=id', { accept: 'application/vnd.pgrst.array+json;nulls=stripped' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ id: 1, mood: 'happy' }, { id: 2, mood: 'meh' }, { id: 3 }]);
  });

  it('refuses a media type it cannot produce with 406 PGRST107', async () => {
    const res = await get('users', { accept: 'application/xml' });
    expect(res.status).toBe(406);
    expect(await res.json()).toMatchObject({ code: 'PGRST107' });
  });
});

describe('schemas', () => {
  it('switches schema with Accept-Profile and Content-Profile among REST_SCHEMAS', async () => {
    const read = await f.anon.schema('api').from('items').select('name');
    expect(read.error).toBeNull();
    expect(read.data).toEqual([{ name: 'from api' }]);
    const write = await f.user.schema('api').from('items').insert({ id: 2, name: 'written' }).select();
    expect(write.status).toBe(201);
    const res = await get('items', { 'accept-profile': 'api' });
    expect(res.headers.get('content-profile')).toBe('api');
    const missing = await f.anon.from('items').select();
    expect(missing.status).toBe(404);
    expect(missing.error?.code).toBe('PGRST205');
    const hidden = await get('sessions', { 'accept-profile': 'hallpass' });
    expect(hidden.status).toBe(406);
    expect(await hidden.json()).toMatchObject({ code: 'PGRST106' });
  });

  it("reloads the schema cache on NOTIFY pgrst, 'reload schema'", async () => {
    expect((await f.anon.rpc('numbers', { n: 2 })).data).toEqual([1, 2]);
    await f.server.db.exec(`create function public.numbers(n integer, step integer) returns setof integer language sql immutable as 'select generate_series(1, n, step)'`);
    // The cached overloads do not know `step` yet.
    expect((await f.anon.rpc('numbers', { n: 5, step: 2 })).error?.code).toBe('PGRST202');
    await f.server.db.exec(`notify pgrst, 'reload schema'`);
    let data: unknown = null;
    for (let i = 0; i < 100 && !Array.isArray(data); i++) {
      data = (await f.anon.rpc('numbers', { n: 5, step: 2 })).data;
      if (!Array.isArray(data)) await new Promise((r) => setTimeout(r, 20));
    }
    expect(data).toEqual([1, 3, 5]);
  });
});
