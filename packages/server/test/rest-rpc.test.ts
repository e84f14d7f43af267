import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './rest-fixture.ts';

// Functions as PostgREST documents them (api.md "Functions as RPC"), through supabase-js's rpc().
let f: Fixture;
// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  f = await startFixture();
}, 300_000);
afterAll(() => f?.server.stop());

describe('rpc', () => {
  it('calls a scalar function with named arguments by POST and by GET, choosing the overload by argument names', async () => {
    const post = await f.anon.rpc('add_them', { a: 1, b: 2 });
    expect(post.error).toBeNull();
    expect(post.status).toBe(200);
    expect(post.data).toBe(3);
    const get = await f.anon.rpc('add_them', { a: 'x', c: 'y' }, { get: true });
    expect(get.data).toBe('xy');
  });

  it('answers a set-returning function as an array, with select, filters, order and limit on the result', async () => {
    const { data, error } = await f.anon.rpc('posts_by', { author: 1 }).select('title, stars').gt('stars', 3);
    expect(error).toBeNull();
    expect(data).toEqual([{ title: 'Engines', stars: 5 }]);
    const ordered = await f.anon.rpc('titles', { min_stars: 3 }).order('title').limit(2);
    expect(ordered.data).toEqual([
      { id: 3, title: 'Compilers' },
      { id: 1, title: 'Engines' },
    ]);
    const numbers = await f.anon.rpc('numbers', { n: 3 });
    expect(numbers.data).toEqual([1, 2, 3]);
  });

  it('embeds from the rows of a function that returns a table\'s rows', async () => {
    const { data } = await f.anon.rpc('posts_by', { author: 2 }).select('title, tags(label)').eq('published', true);
    expect(data).toEqual([{ title: 'Compilers', tags: [{ label: 'computing' }] }]);
  });

  it('answers a function returning one composite as an object, a default argument left out', async () => {
    const stats = await f.anon.rpc('author_stats', { author: 1 });
    expect(stats.data).toEqual({ posts: 2, stars: 8 });
    const all = await f.anon.rpc('titles');
    expect(all.data).toHaveLength(4);
  });

  it('passes the whole body to a single json parameter with params=single-object', async () => {
    const res = await fetch(`${f.server.url}/rest/v1/rpc/echo`, {
      method: 'POST',
      headers: { apikey: f.anonKey, 'content-type': 'application/json', prefer: 'params=single-object' },
      body: JSON.stringify({ any: ['thing', 1] }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ any: ['thing', 1] });
  });

  it('runs a volatile function by POST under the caller, refuses it by GET, and answers void with 204', async () => {
    const star = await f.user.rpc('star', { post: 2 });
    expect(star.data).toBe(4);
    const get = await f.user.rpc('star', { post: 2 }, { get: true });
    expect(get.status).toBe(405);
    const none = await f.anon.rpc('nothing');
    expect(none.status).toBe(204);
    const who = await f.user.rpc('whoami');
    expect(who.data).toBe('authenticated');
  });

  it('respects EXECUTE privileges as PostgREST does: 401 for anon, 403 for a user, 200 for the service key', async () => {
    const anon = await f.anon.rpc('admin_only');
    expect(anon.status).toBe(401);
    expect(anon.error).toMatchObject({ code: '42501', message: 'permission denied for function admin_only' });
    const user = await f.user.rpc('admin_only');
    expect(user.status).toBe(403);
    const svc = await f.service.rpc('admin_only');
    expect(svc.data).toBe(42);
  });

  it('answers an unknown function or unknown arguments with 404 PGRST202, and ambiguity with 300 PGRST203', async () => {
    const unknown = await f.anon.rpc('no_such_fn', { a: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.error).toMatchObject({
      code: 'PGRST202',
      message: 'Could not find the function public.no_such_fn(a) in the schema cache',
      details: 'Searched for the function public.no_such_fn with parameter a or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.',
    });
    const wrongArgs = await f.anon.rpc('add_them', { a: 1, z: 2 });
    expect(wrongArgs.status).toBe(404);
    expect(wrongArgs.error?.code).toBe('PGRST202');
    await f.server.db.exec(`create function public.twice(x integer, y integer default 1) returns integer language sql as 'select x * y';
      create function public.twice(x integer, z text default 'a') returns integer language sql as 'select x';`);
    const ambiguous = await f.anon.rpc('twice', { x: 2 });
    expect(ambiguous.status).toBe(300);
    expect(ambiguous.error?.code).toBe('PGRST203');
    const put = await fetch(`${f.server.url}/rest/v1/rpc/add_them`, { method: 'PUT', headers: { apikey: f.anonKey } });
    expect(put.status).toBe(405);
    expect(await put.json()).toMatchObject({ code: 'PGRST101', message: 'Cannot use the PUT method on RPC' });
  });

  it('counts the rows of a set-returning function', async () => {
    const { count, data } = await f.anon.rpc('titles', {}, { count: 'exact' }).range(0, 0);
    expect(count).toBe(4);
    expect(data).toHaveLength(1);
  });
});
