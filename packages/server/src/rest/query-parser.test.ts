import { describe, expect, it } from 'vitest';
import type { Catalog, TableInfo } from './catalog.ts';
import { parsePrefer, parseQuery } from './query-parser.ts';
import { RestError } from './rest-errors.ts';
import { buildRead, resolveTree, rootAlias } from './sql-builder.ts';

const q = (s: string) => parseQuery(new URLSearchParams(s));

const all = new Set(['id', 'email', 'we"ird', 'data']);
const table: TableInfo = {
  schema: 'public',
  name: 'profiles',
  columns: new Map([
    ['id', { name: 'id', type: 'uuid' }],
    ['email', { name: 'email', type: 'text' }],
    ['we"ird', { name: 'we"ird', type: 'integer' }],
    ['data', { name: 'data', type: 'jsonb' }],
  ]),
  relationships: [],
  primaryKey: ['id'],
  insertable: { anon: new Set(), authenticated: all, service_role: all },
  updatable: { anon: new Set(), authenticated: all, service_role: all },
};
const catalog: Catalog = {
  table: async () => undefined,
  functions: async () => [],
  forget: () => {},
  clear: () => {},
};
const read = async (s: string) => buildRead(await resolveTree(catalog, table, q(s)), `x ${rootAlias}`, { stripNulls: false, count: false }).statement;

describe('parseQuery', () => {
  it('reads the filters supabase-js writes, values untouched', () => {
    expect(q("email=eq.a'b;--&id=in.(1,\"x,y\",3)&name=is.NULL&email=not.ilike.*bob*").levels.get('')!.conditions).toEqual([
      { kind: 'leaf', field: { name: 'email', json: [] }, op: 'eq', negate: false, value: "a'b;--" },
      { kind: 'leaf', field: { name: 'id', json: [] }, op: 'in', negate: false, value: ['1', 'x,y', '3'] },
      { kind: 'leaf', field: { name: 'name', json: [] }, op: 'is', negate: false, value: 'null' },
      { kind: 'leaf', field: { name: 'email', json: [] }, op: 'ilike', negate: true, value: '%bob%' },
    ]);
  });

  it('reads select trees: aliases, casts, JSON paths, embeds with hints, spreads and aggregates', () => {
    const p = q('select=id,mail:email,id::text,data->a->>b,author:users!posts_author_fkey!inner(name),...tags(label),amount.sum(),count()');
    expect(p.select).toEqual([
      { kind: 'column', field: { name: 'id', json: [] } },
      { kind: 'column', alias: 'mail', field: { name: 'email', json: [] } },
      { kind: 'column', field: { name: 'id', json: [] }, cast: 'text' },
      { kind: 'column', field: { name: 'data', json: [{ arrow: '->', key: 'a' }, { arrow: '->>', key: 'b' }] } },
      { kind: 'embed', name: 'users', alias: 'author', hint: 'posts_author_fkey', join: 'inner', spread: false, select: [{ kind: 'column', field: { name: 'name', json: [] } }] },
      { kind: 'embed', name: 'tags', spread: true, select: [{ kind: 'column', field: { name: 'label', json: [] } }] },
      { kind: 'column', field: { name: 'amount', json: [] }, aggregate: 'sum' },
      { kind: 'count' },
    ]);
  });

  it('reads order terms, limits and logic trees per embed level', () => {
    const p = q('order=email.desc.nullslast,id&limit=5&offset=10&posts.order=id&posts.limit=2&or=(id.eq.1,and(email.like.a*,id.not.is.null))&posts.not.or=(a.eq.1)');
    expect(p.levels.get('')).toMatchObject({ limit: 5, offset: 10, order: [{ descending: true, nulls: 'last' }, { descending: false }] });
    expect(p.levels.get('posts')).toMatchObject({ limit: 2, conditions: [{ kind: 'or', negate: true }] });
    const tree = p.levels.get('')!.conditions[0]!;
    expect(tree).toMatchObject({ kind: 'or', items: [{ op: 'eq', value: '1' }, { kind: 'and', items: [{ op: 'like', value: 'a%' }, { op: 'is', negate: true }] }] });
  });

  it('refuses what it does not speak, and what is too big, with PGRST100', () => {
    const deep = `or=${'or('.repeat(20)}a.eq.1${')'.repeat(20)}`.replace('or=or(', 'or=(');
    const wide = `or=(${Array.from({ length: 400 }, (_, i) => `a.eq.${i}`).join(',')})`;
    for (const s of ['id=cs', 'id=eq', 'limit=-1', 'select=id::evil', 'id=is.maybe', 'or=a.eq.1', 'select=a(b', 'id=nope.1', deep, wide, `select=${'a('.repeat(12)}b${')'.repeat(12)}`]) {
      expect(() => q(s), s).toThrow(RestError);
      try {
        q(s);
      } catch (err) {
        expect((err as RestError).code, s).toBe('PGRST100');
      }
    }
  });

  it('reads Prefer as supabase-js sends it', () => {
    expect(parsePrefer('resolution=merge-duplicates, count=exact,return=representation, tx=rollback, bogus')).toMatchObject({
      return: 'representation',
      resolution: 'merge-duplicates',
      count: 'exact',
      missingDefault: false,
      rollback: true,
      invalid: ['bogus'],
    });
    expect(parsePrefer(undefined).return).toBe('minimal');
  });
});

describe('sql-builder', () => {
  it('binds every value and quotes every name from the catalog', async () => {
    const s = await read('select="we""ird",data->>k&email=eq.x\'); drop table profiles;--&"we""ird"=in.(1,2)&limit=3');
    expect(s.params).toEqual(['k', "x'); drop table profiles;--", '["1","2"]', '3']);
    expect(s.text).not.toContain('drop table');
    expect(s.text).toContain('pgrst_t."we""ird"');
    expect(s.text).toContain('= ($1[2])::text');
    expect(s.text).toContain('= any(array(select json_array_elements_text(($1[3])::json))::integer[])');
    expect(s.text).toContain('limit ($1[4])::bigint');
  });

  it('refuses a column the catalog does not know with PGRST204, and an unknown embed with PGRST200', async () => {
    await expect(read('nope=eq.1')).rejects.toMatchObject({ code: 'PGRST204', status: 400 });
    await expect(read('select=*,posts(*)')).rejects.toMatchObject({ code: 'PGRST200', status: 400 });
    await expect(read('posts.limit=1')).rejects.toMatchObject({ code: 'PGRST108', status: 400 });
  });
});
