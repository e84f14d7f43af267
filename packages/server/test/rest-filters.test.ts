import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './rest-fixture.ts';

// Horizontal filtering as PostgREST documents it (api.md "Operators", "Logical operators", "JSON
// columns", "Casting columns"), through supabase-js's filter builders.
let f: Fixture;
// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  f = await startFixture();
}, 300_000);
afterAll(() => f?.server.stop());

const ids = (rows: { id: number }[] | null) => rows?.map((r) => r.id);

describe('filters', () => {
  it('negates with not, and combines with or/and trees, nested', async () => {
    const not = await f.anon.from('posts').select('id').not('stars', 'gte', 4).order('id');
    expect(ids(not.data)).toEqual([2, 4]);
    const or = await f.anon.from('posts').select('id').or('stars.gte.5,title.eq.Draft').order('id');
    expect(ids(or.data)).toEqual([1, 4]);
    const nested = await f.anon.from('posts').select('id').or('and(stars.gte.3,author_id.eq.2),id.eq.2').order('id');
    expect(ids(nested.data)).toEqual([2, 3]);
    const notOr = await fetch(`${f.server.url}/rest/v1/posts?select=id&not.or=(stars.gte.4,id.eq.4)&order=id`, { headers: { apikey: f.anonKey } });
    expect(await notOr.json()).toEqual([{ id: 2 }]);
    const embeddedOr = await f.anon.from('users').select('id, posts!author_id(id)').eq('id', 1).or('stars.eq.5,stars.eq.0', { referencedTable: 'posts' }).single();
    expect(embeddedOr.data).toEqual({ id: 1, posts: [{ id: 1 }] });
  });

  it('matches arrays and ranges with cs, cd, ov, sl, sr, nxl, nxr and adj', async () => {
    expect(ids((await f.anon.from('users').select('id').contains('tags', ['code']).order('id')).data)).toEqual([1, 2]);
    expect(ids((await f.anon.from('users').select('id').containedBy('tags', ['code', 'math', 'art']).order('id')).data)).toEqual([1, 3]);
    expect(ids((await f.anon.from('users').select('id').overlaps('tags', ['navy', 'art'])).data)).toEqual([2]);
    expect(ids((await f.anon.from('posts').select('id').rangeLt('during', '[5,6)').order('id')).data)).toEqual([1]);
    expect(ids((await f.anon.from('posts').select('id').rangeGt('during', '[5,6)').order('id')).data)).toEqual([3]);
    expect(ids((await f.anon.from('posts').select('id').rangeLte('during', '[5,10)').order('id')).data)).toEqual([1, 2]);
    expect(ids((await f.anon.from('posts').select('id').rangeGte('during', '[5,10)').order('id')).data)).toEqual([2, 3]);
    expect(ids((await f.anon.from('posts').select('id').rangeAdjacent('during', '[10,12)').order('id')).data)).toEqual([2]);
    expect(ids((await f.anon.from('posts').select('id').contains('during', '[6,7)')).data)).toEqual([2]);
    expect(ids((await f.anon.from('users').select('id').contains('data', { city: { name: 'London' } })).data)).toEqual([1]);
  });

  it('matches patterns with like/ilike (* as %), match/imatch, and tests is, isdistinct and in with quoted values', async () => {
    expect(ids((await f.anon.from('posts').select('id').like('title', '*ngine*')).data)).toEqual([1]);
    expect(ids((await f.anon.from('posts').select('id').ilike('title', 'n%')).data)).toEqual([2]);
    expect(ids((await f.anon.from('posts').select('id').match({ stars: 3 })).data)).toEqual([2]);
    const regex = await fetch(`${f.server.url}/rest/v1/posts?select=id&title=imatch.^c.*s$`, { headers: { apikey: f.anonKey } });
    expect(await regex.json()).toEqual([{ id: 3 }]);
    expect(ids((await f.anon.from('posts').select('id').is('reviewer_id', null).order('id')).data)).toEqual([2, 4]);
    const distinct = await fetch(`${f.server.url}/rest/v1/posts?select=id&reviewer_id=isdistinct.1&order=id`, { headers: { apikey: f.anonKey } });
    expect(await distinct.json()).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);
    await f.service.from('tags').insert({ id: 9, label: 'a,b "c"' });
    const quoted = await f.anon.from('tags').select('id').in('label', ['a,b "c"', 'math']).order('id');
    expect(ids(quoted.data)).toEqual([3, 9]);
    expect((await f.anon.from('users').select('id').eq('mood', 'happy')).data).toEqual([{ id: 1 }]);
  });

  it('searches text with fts, plfts, phfts and wfts, with a language', async () => {
    const fts = await f.anon.from('posts').select('id').textSearch('body', "'engine' & 'analytical'", { config: 'english' });
    expect(ids(fts.data)).toEqual([1]);
    const plain = await f.anon.from('posts').select('id').textSearch('body', 'engines', { type: 'plain', config: 'english' }).order('id');
    expect(ids(plain.data)).toEqual([1, 2]);
    const phrase = await f.anon.from('posts').select('id').textSearch('body', 'compiler translates', { type: 'phrase', config: 'english' });
    expect(ids(phrase.data)).toEqual([3]);
    const web = await f.anon.from('posts').select('id').textSearch('body', 'engine -analytical', { type: 'websearch', config: 'english' });
    expect(ids(web.data)).toEqual([2]);
  });

  it('reads JSON paths in select, filters and order, and casts in select', async () => {
    const { data, error } = await f.anon.from('users').select('id, city:data->city->>name, age:data->age, id_text:id::text').gt('data->age', 40).order('data->>age');
    expect(error).toBeNull();
    expect(data).toEqual([{ id: 2, city: 'Arlington', age: 85, id_text: '2' }]);
    const eq = await f.anon.from('users').select('name').eq('data->city->>name', 'London');
    expect(eq.data).toEqual([{ name: 'Ada' }]);
    const defaultKey = await f.anon.from('users').select('data->city').eq('id', 1).single();
    expect(defaultKey.data).toEqual({ city: { name: 'London' } });
  });

  it('answers hostile filters with a 4xx and a PostgREST code, never a 500', async () => {
    const cases: [string, number, string][] = [
      ['posts?nope=eq.1', 400, 'PGRST204'],
      ['posts?id=eq.not-a-number', 400, '22P02'],
      ['posts?id=zz.1', 400, 'PGRST100'],
      ['posts?or=(id.eq.1', 400, 'PGRST100'],
      ['posts?title->>x=eq.1', 400, 'PGRST100'],
      ['posts?select=id::pg_catalog.text', 400, 'PGRST100'],
      [`posts?or=(${Array.from({ length: 400 }, (_, i) => `id.eq.${i}`).join(',')})`, 400, 'PGRST100'],
      [`posts?or=(${'or('.repeat(30)}id.eq.1${')'.repeat(30)})`, 400, 'PGRST100'],
      ['posts?body=fts(no_such_config).x', 400, '42704'],
      ["posts?title=eq.'; drop table posts; --", 200, ''],
    ];
    for (const [path, status, code] of cases) {
      const res = await fetch(`${f.server.url}/rest/v1/${path}`, { headers: { apikey: f.anonKey } });
      expect(res.status, path).toBe(status);
      if (code) expect((await res.json()).code, path).toBe(code);
    }
  });
});
