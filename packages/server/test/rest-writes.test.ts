import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './rest-fixture.ts';

// Writes as PostgREST documents them (api.md "Insert", "Update", "Upsert", "PUT", "Delete",
// preferences.md "Prefer" headers), through supabase-js and, where it has no builder, plain fetch.
let f: Fixture;
// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  f = await startFixture();
}, 300_000);
afterAll(() => f?.server.stop());

const send = (method: string, path: string, body: unknown, prefer = '') =>
  fetch(`${f.server.url}/rest/v1/${path}`, {
    method,
    headers: { apikey: f.anonKey, authorization: `Bearer ${f.userToken}`, 'content-type': 'application/json', ...(prefer ? { prefer } : {}) },
    body: JSON.stringify(body),
  });
const labels = async (ids: number[]) => (await f.service.from('tags').select('id, label').in('id', ids).order('id')).data;

describe('writes', () => {
  it('answers an upsert that inserted with 201 and one that only updated with 200, returning the written rows on on_conflict', async () => {
    const first = await f.user.from('tags').upsert({ id: 100, label: 'new' }).select();
    expect(first.status).toBe(201);
    expect(first.data).toEqual([{ id: 100, label: 'new' }]);
    const again = await f.user.from('tags').upsert({ id: 100, label: 'renamed' }).select();
    expect(again.status).toBe(200);
    expect(again.data).toEqual([{ id: 100, label: 'renamed' }]);
    const onLabel = await f.user.from('tags').upsert({ id: 100, label: 'renamed' }, { onConflict: 'label' }).select('id, label');
    expect(onLabel.data).toEqual([{ id: 100, label: 'renamed' }]);
  });

  it('ignores duplicates with resolution=ignore-duplicates', async () => {
    const res = await f.user.from('tags').upsert([{ id: 1, label: 'overwritten?' }, { id: 101, label: 'fresh' }], { ignoreDuplicates: true }).select('id');
    expect(res.status).toBe(201);
    expect(res.data).toEqual([{ id: 101 }]);
    expect(await labels([1])).toEqual([{ id: 1, label: 'history' }]);
  });

  it('fills keys a row leaves out from column defaults with missing=default', async () => {
    const rows = [{ author_id: 3, title: 'with stars', stars: 9 }, { author_id: 3, title: 'no stars' }];
    const nulls = await f.user.from('posts').insert(rows);
    expect(nulls.status).toBe(400);
    expect(nulls.error?.code).toBe('23502');
    const defaults = await f.user.from('posts').insert(rows, { defaultToNull: false }).select('title, stars');
    expect(defaults.error).toBeNull();
    expect(defaults.data).toEqual([{ title: 'with stars', stars: 9 }, { title: 'no stars', stars: 0 }]);
  });

  it('answers return=headers-only with 201, a Location and no body', async () => {
    const res = await send('POST', 'tags', { id: 102, label: 'located' }, 'return=headers-only');
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/tags?id=eq.102');
    expect(await res.text()).toBe('');
  });

  it('answers tx=rollback with what the write would return, and keeps nothing', async () => {
    const res = await send('POST', 'tags', { id: 103, label: 'rolled back' }, 'tx=rollback, return=representation');
    expect(res.status).toBe(201);
    expect(res.headers.get('preference-applied')).toContain('tx=rollback');
    expect(await res.json()).toEqual([{ id: 103, label: 'rolled back' }]);
    expect(await labels([103])).toEqual([]);
  });

  it('refuses with handling=strict a write over max-affected (PGRST124) and unknown preferences (PGRST122)', async () => {
    const over = await send('PATCH', 'posts?stars=gte.0', { body: 'all of them' }, 'handling=strict, max-affected=1');
    expect(over.status).toBe(400);
    expect(await over.json()).toEqual({ code: 'PGRST124', message: 'Query result exceeds max-affected preference constraint', details: expect.stringMatching(/^The query affects \d+ rows$/), hint: null });
    expect((await f.service.from('posts').select('id').eq('body', 'all of them')).data).toEqual([]);
    const within = await send('PATCH', 'posts?id=eq.4', { body: 'one' }, 'handling=strict, max-affected=1');
    expect(within.status).toBe(204);
    const unknown = await send('PATCH', 'posts?id=eq.4', { body: 'x' }, 'handling=strict, frobnicate=yes');
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ code: 'PGRST122', details: 'Invalid preferences: frobnicate=yes' });
  });

  it('inserts only the ?columns= named, over rows of any shape', async () => {
    const res = await send('POST', 'tags?columns=id,label', [{ id: 104, label: 'a', extra: 1 }, { id: 105, label: 'b' }], 'return=representation');
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual([{ id: 104, label: 'a' }, { id: 105, label: 'b' }]);
  });

  it('upserts one row with PUT, keyed by the primary key filter', async () => {
    const created = await send('PUT', 'tags?id=eq.106', { id: 106, label: 'put' }, 'return=representation');
    expect(created.status).toBe(200);
    expect(await created.json()).toEqual([{ id: 106, label: 'put' }]);
    const replaced = await send('PUT', 'tags?id=eq.106', { id: 106, label: 'put again' });
    expect(replaced.status).toBe(204);
    expect(await labels([106])).toEqual([{ id: 106, label: 'put again' }]);
    const mismatch = await send('PUT', 'tags?id=eq.106', { id: 7, label: 'x' });
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({ code: 'PGRST115', message: 'Payload values do not match URL in primary key column(s)' });
    const notPk = await send('PUT', 'tags?label=eq.put', { id: 106, label: 'x' });
    expect(notPk.status).toBe(405);
    expect(await notPk.json()).toMatchObject({ code: 'PGRST105' });
  });

  it('answers single() over several rows with PostgREST\'s PGRST116 message and details, and undoes a singular write', async () => {
    const many = await f.anon.from('posts').select('id').lte('id', 4).single();
    expect(many.status).toBe(406);
    expect(many.error).toEqual({ code: 'PGRST116', message: 'Cannot coerce the result to a single JSON object', details: 'The result contains 4 rows', hint: null });
    const write = await f.user.from('posts').update({ stars: 99 }).lte('id', 2).select().single();
    expect(write.status).toBe(406);
    expect((await f.service.from('posts').select('id').eq('stars', 99)).data).toEqual([]);
  });
});
