import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './rest-fixture.ts';

// Resource embedding as PostgREST documents it (api.md "Resource Embedding"), through supabase-js.
let f: Fixture;
// Starting a server (migrations included) can take a minute on a busy machine.
beforeAll(async () => {
  f = await startFixture();
}, 300_000);
afterAll(() => f?.server.stop());

describe('embedding through foreign keys', () => {
  it('embeds many-to-one with an alias, disambiguated by a column hint', async () => {
    const { data, error, status } = await f.anon.from('posts').select('title, author:users!author_id(name)').lte('id', 2).order('id');
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual([
      { title: 'Engines', author: { name: 'Ada' } },
      { title: 'Notes', author: { name: 'Ada' } },
    ]);
    const byName = await f.anon.from('posts').select('title, reviewer:users!posts_reviewer_id_fkey(name)').eq('id', 2).single();
    expect(byName.data).toEqual({ title: 'Notes', reviewer: null });
  });

  it('answers an ambiguous embed with 300 PGRST201 and the candidates, an unknown one with 400 PGRST200', async () => {
    const ambiguous = await f.anon.from('posts').select('title, users(name)');
    expect(ambiguous.status).toBe(300);
    expect(ambiguous.error?.code).toBe('PGRST201');
    expect(ambiguous.error?.message).toBe("Could not embed because more than one relationship was found for 'posts' and 'users'");
    expect(ambiguous.error?.details).toEqual([
      { cardinality: 'many-to-one', embedding: 'posts with users', relationship: 'posts_author_id_fkey using posts(author_id) and users(id)' },
      { cardinality: 'many-to-one', embedding: 'posts with users', relationship: 'posts_reviewer_id_fkey using posts(reviewer_id) and users(id)' },
    ]);
    expect(ambiguous.error?.hint).toContain("'users!posts_author_id_fkey'");
    const unknown = await f.anon.from('posts').select('title, nothing(*)');
    expect(unknown.status).toBe(400);
    expect(unknown.error).toMatchObject({
      code: 'PGRST200',
      message: "Could not find a relationship between 'posts' and 'nothing' in the schema cache",
      details: "Searched for a foreign key relationship between 'posts' and 'nothing' in the schema 'public', but no matches were found.",
    });
  });

  it('embeds one-to-many under RLS: hidden comments stay hidden inside the embed', async () => {
    const { data, error } = await f.anon.from('posts').select('id, comments(body)').eq('id', 1).single();
    expect(error).toBeNull();
    expect(data).toEqual({ id: 1, comments: [{ body: 'Brilliant' }, { body: 'Agreed' }] });
    const none = await f.anon.from('posts').select('id, comments(body)').eq('id', 2).single();
    expect(none.data).toEqual({ id: 2, comments: [] });
  });

  it('embeds one-to-one as an object or null', async () => {
    const { data } = await f.anon.from('users').select('name, user_settings(theme)').order('id').limit(2);
    expect(data).toEqual([
      { name: 'Ada', user_settings: { theme: 'dark' } },
      { name: 'Grace', user_settings: null },
    ]);
  });

  it('embeds many-to-many through the junction table', async () => {
    const { data } = await f.anon.from('posts').select('title, tags(label)').in('id', [1, 2]).order('id').order('label', { referencedTable: 'tags' });
    expect(data).toEqual([
      { title: 'Engines', tags: [{ label: 'computing' }, { label: 'history' }] },
      { title: 'Notes', tags: [] },
    ]);
    const back = await f.anon.from('tags').select('label, posts(id)').eq('id', 2).single();
    expect(back.data).toEqual({ label: 'computing', posts: [{ id: 1 }, { id: 3 }] });
  });

  it('nests embeds, with order and limit on an embedded level', async () => {
    const { data, error } = await f.anon
      .from('users')
      .select('name, posts!author_id(title, comments(body))')
      .eq('id', 1)
      .order('id', { referencedTable: 'posts', ascending: false })
      .limit(1, { referencedTable: 'posts' })
      .single();
    expect(error).toBeNull();
    expect(data).toEqual({ name: 'Ada', posts: [{ title: 'Notes', comments: [] }] });
  });

  it('spreads a to-one embed into the parent, and a to-many one into arrays', async () => {
    const one = await f.anon.from('posts').select('title, ...users!author_id(author:name)').eq('id', 3).single();
    expect(one.data).toEqual({ title: 'Compilers', author: 'Grace' });
    const many = await f.anon.from('posts').select('id, ...tags(label)').eq('id', 1).order('id', { referencedTable: 'tags' }).single();
    expect(many.data).toEqual({ id: 1, label: ['history', 'computing'] });
  });

  it('filters parents by their children with !inner, and filters children alone with !left', async () => {
    const inner = await f.anon.from('posts').select('id, comments!inner(body)').eq('comments.body', 'Nice');
    expect(inner.data).toEqual([{ id: 3, comments: [{ body: 'Nice' }] }]);
    const left = await f.anon.from('posts').select('id, comments!left(body)').eq('comments.body', 'Nice').lte('id', 3).order('id');
    expect(left.data).toEqual([
      { id: 1, comments: [] },
      { id: 2, comments: [] },
      { id: 3, comments: [{ body: 'Nice' }] },
    ]);
    const nonNull = await f.anon.from('posts').select('id, user_settings:users!reviewer_id(user_settings(theme))').not('user_settings', 'is', null).order('id');
    expect(nonNull.data?.map((r) => r.id)).toEqual([1, 3]);
  });

  it('embeds from and to a view through its base table\'s keys', async () => {
    const from = await f.anon.from('published_posts').select('title, author:users!author_id(name)').order('id').limit(1).single();
    expect(from.data).toEqual({ title: 'Engines', author: { name: 'Ada' } });
    const to = await f.anon.from('users').select('name, published_posts!author_id(title)').eq('id', 2).single();
    expect(to.data).toEqual({ name: 'Grace', published_posts: [{ title: 'Compilers' }] });
  });

  it('orders by a column of a to-one embed, and refuses it on a to-many one with PGRST118', async () => {
    const { data } = await f.anon.from('posts').select('id, author:users!author_id(name)').lte('id', 3).order('author(name)', { ascending: false }).order('id');
    expect(data?.map((r) => r.id)).toEqual([3, 1, 2]);
    const res = await fetch(`${f.server.url}/rest/v1/users?select=id,comments(body)&order=comments(body)`, { headers: { apikey: f.anonKey } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'PGRST118' });
  });

  it('embeds in the answer of an insert, an update and an upsert', async () => {
    const ins = await f.user.from('posts').insert({ author_id: 2, title: 'Embedded answer' }).select('title, author:users!author_id(name)').single();
    expect(ins.status).toBe(201);
    expect(ins.data).toEqual({ title: 'Embedded answer', author: { name: 'Grace' } });
    const upd = await f.user.from('posts').update({ stars: 1 }).eq('title', 'Embedded answer').select('stars, reviewer:users!reviewer_id(name)');
    expect(upd.data).toEqual([{ stars: 1, reviewer: null }]);
  });

  it('runs every embedded read under the caller: another user\'s rows never come through an embed', async () => {
    const other = await f.signIn('other');
    await f.user.from('notes').insert({ post_id: 1, body: 'mine' });
    await other.client.from('notes').insert({ post_id: 1, body: 'theirs' });
    const mine = await f.user.from('posts').select('id, notes(body)').eq('id', 1).single();
    expect(mine.data).toEqual({ id: 1, notes: [{ body: 'mine' }] });
    const anon = await f.anon.from('posts').select('id, notes(body)').eq('id', 1);
    expect(anon.status).toBe(401);
    expect(anon.error?.code).toBe('42501');
  });

  it('answers filters on a level that is not embedded with PGRST108, and deep nesting with PGRST100', async () => {
    const res = await f.anon.from('posts').select('id').eq('comments.body', 'x');
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'PGRST108', message: "'comments' is not an embedded resource in this request" });
    const deep = await f.anon.from('posts').select(`id,${'comments(posts('.repeat(6)}id${'))'.repeat(6)}`);
    expect(deep.status).toBe(400);
    expect(deep.error?.code).toBe('PGRST100');
  });
});
