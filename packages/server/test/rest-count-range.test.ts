import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './rest-fixture.ts';

// Counting, ranges and aggregates as PostgREST documents them (api.md "Pagination and Order",
// "Exact Count", "Planned Count", "Estimated Count", "Aggregate Functions").
let f: Fixture;
// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  f = await startFixture();
  await f.server.db.exec('analyze public.posts');
}, 300_000);
afterAll(() => f?.server.stop());

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${f.server.url}/rest/v1/${path}`, { headers: { apikey: f.anonKey, ...headers } });

describe('counts and ranges', () => {
  it('counts exactly, answering a partial page with 206 and Content-Range', async () => {
    const { data, count, status } = await f.anon.from('posts').select('id', { count: 'exact' }).order('id').range(0, 1);
    expect(status).toBe(206);
    expect(count).toBe(4);
    expect(data).toEqual([{ id: 1 }, { id: 2 }]);
    const res = await get('posts?select=id&order=id&limit=2', { prefer: 'count=exact' });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('0-1/4');
    const whole = await get('posts?select=id', { prefer: 'count=exact' });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-range')).toBe('0-3/4');
  });

  it('counts by the planner with planned, and exactly below max_rows with estimated', async () => {
    const planned = await f.anon.from('posts').select('id', { count: 'planned' });
    expect(planned.error).toBeNull();
    expect(planned.count).toBe(4);
    const estimated = await f.anon.from('posts').select('id', { count: 'estimated' }).gt('stars', 3);
    expect(estimated.count).toBe(2);
  });

  it('answers HEAD with the count and no body', async () => {
    const { count, data, status } = await f.anon.from('posts').select('*', { count: 'exact', head: true });
    expect(status).toBe(200);
    expect(count).toBe(4);
    expect(data).toBeNull();
    const res = await fetch(`${f.server.url}/rest/v1/posts`, { method: 'HEAD', headers: { apikey: f.anonKey, prefer: 'count=exact' } });
    expect(res.headers.get('content-range')).toBe('0-3/4');
    expect(await res.text()).toBe('');
  });

  it('reads Range and Range-Unit request headers', async () => {
    const res = await get('posts?select=id&order=id', { range: '1-2', 'range-unit': 'items' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBe('1-2/*');
    expect(await res.json()).toEqual([{ id: 2 }, { id: 3 }]);
    const counted = await get('posts?select=id&order=id', { range: '1-2', prefer: 'count=exact' });
    expect(counted.status).toBe(206);
    expect(counted.headers.get('content-range')).toBe('1-2/4');
  });

  it('answers a range outside the rows with 416 PGRST103', async () => {
    const past = await get('posts?select=id&offset=10', { prefer: 'count=exact' });
    expect(past.status).toBe(416);
    expect(await past.json()).toMatchObject({ code: 'PGRST103', message: 'Requested range not satisfiable', details: 'An offset of 10 was requested, but there are only 4 rows.' });
    const backwards = await get('posts?select=id', { range: '3-1' });
    expect(backwards.status).toBe(416);
    expect(await backwards.json()).toMatchObject({ code: 'PGRST103' });
  });

  it('counts the rows a write touched, an upsert and an rpc included', async () => {
    const ins = await f.user.from('tags').insert([{ id: 20, label: 'x' }, { id: 21, label: 'y' }], { count: 'exact' });
    expect(ins.status).toBe(201);
    expect(ins.count).toBe(2);
    const up = await f.user.from('tags').upsert([{ id: 20, label: 'x2' }], { count: 'exact' });
    expect(up.count).toBe(1);
    const del = await f.user.from('tags').delete({ count: 'exact' }).in('id', [20, 21]);
    expect(del.count).toBe(2);
    const rpc = await f.anon.rpc('posts_by', { author: 1 }, { count: 'exact' });
    expect(rpc.count).toBe(2);
  });
});

describe('aggregates', () => {
  it('counts, sums and averages, with aliases, grouped by the other columns', async () => {
    expect((await f.anon.from('posts').select('count()')).data).toEqual([{ count: 4 }]);
    const grouped = await f.anon.from('posts').select('author_id, total:stars.sum(), stars.avg(), n:count()').order('author_id');
    expect(grouped.error).toBeNull();
    expect(grouped.data).toEqual([
      { author_id: 1, total: 8, avg: 4, n: 2 },
      { author_id: 2, total: 4, avg: 2, n: 2 },
    ]);
    const max = await f.anon.from('posts').select('stars.max(), stars.min()');
    expect(max.data).toEqual([{ max: 5, min: 0 }]);
  });

  it('aggregates inside an embed', async () => {
    const { data } = await f.anon.from('users').select('name, posts!author_id(count), stars:posts!author_id(stars.sum())').order('id');
    expect(data).toEqual([
      { name: 'Ada', posts: [{ count: 2 }], stars: [{ sum: 8 }] },
      { name: 'Grace', posts: [{ count: 2 }], stars: [{ sum: 4 }] },
      { name: 'Linus', posts: [{ count: 0 }], stars: [{ sum: null }] },
    ]);
  });
});
