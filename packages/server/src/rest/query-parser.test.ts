import { describe, expect, it } from 'vitest';
import type { TableInfo } from './catalog.ts';
import { parsePrefer, parseQuery } from './query-parser.ts';
import { RestError } from './rest-errors.ts';
import { buildSelect, buildUpdate } from './sql-builder.ts';

const q = (s: string) => parseQuery(new URLSearchParams(s));

const all = new Set(['id', 'email', 'we"ird']);
const table: TableInfo = {
  schema: 'public',
  name: 'profiles',
  columns: new Map([
    ['id', { name: 'id', type: 'uuid' }],
    ['email', { name: 'email', type: 'text' }],
    ['we"ird', { name: 'we"ird', type: 'integer' }],
  ]),
  primaryKey: ['id'],
  insertable: { anon: new Set(), authenticated: all, service_role: all },
  updatable: { anon: new Set(), authenticated: all, service_role: all },
};

describe('parseQuery', () => {
  it('reads the filters supabase-js writes, values untouched', () => {
    expect(q("email=eq.a'b;--&id=in.(1,\"x,y\",3)&name=is.NULL&email=not.ilike.*bob*").filters).toEqual([
      { column: 'email', op: 'eq', negate: false, value: "a'b;--" },
      { column: 'id', op: 'in', negate: false, value: ['1', 'x,y', '3'] },
      { column: 'name', op: 'is', negate: false, value: 'null' },
      { column: 'email', op: 'ilike', negate: true, value: '%bob%' },
    ]);
  });

  it('reads select lists with aliases, order terms, limit, offset and quoted columns', () => {
    const p = q('select=id,mail:email&order=email.desc.nullslast,id&limit=5&offset=10&columns="a","b"&on_conflict=tenant_id,email');
    expect(p.select).toEqual([{ column: 'id' }, { alias: 'mail', column: 'email' }]);
    expect(p.order).toEqual([{ column: 'email', descending: true, nulls: 'last' }, { column: 'id', descending: false }]);
    expect(p).toMatchObject({ limit: 5, offset: 10, columns: ['a', 'b'], onConflict: ['tenant_id', 'email'] });
  });

  it('refuses what it does not speak with PGRST100', () => {
    for (const s of ['select=*,other(*)', 'or=(a.eq.1,b.eq.2)', 'id=cs.{1}', 'id=eq', 'limit=-1', 'select=id::text', 'other.limit=1', 'id=is.maybe']) {
      expect(() => q(s), s).toThrow(RestError);
      try {
        q(s);
      } catch (err) {
        expect((err as RestError).code, s).toBe('PGRST100');
      }
    }
  });

  it('reads Prefer as supabase-js sends it', () => {
    expect(parsePrefer('resolution=merge-duplicates, count=exact,return=representation')).toEqual({
      return: 'representation',
      resolution: 'merge-duplicates',
      count: 'exact',
      missingDefault: false,
    });
    expect(parsePrefer(undefined).return).toBe('minimal');
  });
});

describe('sql-builder', () => {
  it('binds every value and quotes every name from the catalog', () => {
    const s = buildSelect(table, q('select="we""ird"&email=eq.x\'); drop table profiles;--&"we""ird"=in.(1,2)&limit=3'), { stripNulls: false });
    expect(s.params).toEqual(["x'); drop table profiles;--", '["1","2"]', '3']);
    expect(s.text).not.toContain('drop table');
    expect(s.text).toContain('pgrst_t."we""ird"');
    expect(s.text).toContain('= ($1[1])::text');
    expect(s.text).toContain('= any(array(select json_array_elements_text(($1[2])::json))::integer[])');
    expect(s.text).toContain('limit ($1[3])::bigint');
  });

  it('refuses a column the catalog does not know with PGRST204', () => {
    expect(() => buildSelect(table, q('nope=eq.1'), { stripNulls: false })).toThrow(expect.objectContaining({ code: 'PGRST204', status: 400 }));
    expect(() =>
      buildUpdate(table, q(''), ['email'], '{}', { prefer: parsePrefer(''), stripNulls: false, role: 'authenticated' }),
    ).not.toThrow();
  });
});
