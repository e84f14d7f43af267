import { describe, expect, it } from 'vitest';
import { columnKind, matchesFilter, parseFilter } from './realtime.filters.ts';

describe('postgres_changes filters', () => {
  it('parses every operator realtime-js sends, with quoted values in lists', () => {
    expect(parseFilter('email=eq.a@b.c')).toEqual({ column: 'email', op: 'eq', values: ['a@b.c'] });
    expect(parseFilter('id=in.(1,2,"3,4")')).toEqual({ column: 'id', op: 'in', values: ['1', '2', '3,4'] });
    for (const op of ['neq', 'lt', 'lte', 'gt', 'gte']) expect(parseFilter(`n=${op}.5`)?.op).toBe(op);
    expect(parseFilter('n=like.5')).toBeNull();
    expect(parseFilter('bad col=eq.1')).toBeNull();
    expect(parseFilter('id=in.1,2')).toBeNull();
  });

  it('compares numbers and times by value, text as text, and never matches null', () => {
    const row = { n: 10, at: '2026-01-02T00:00:00+00:00', s: 'b', z: null };
    const m = (f: string, type: string) => matchesFilter(parseFilter(f)!, columnKind(type), row);
    expect(m('n=gt.9', 'int4')).toBe(true);
    expect(m('n=lt.9', 'int4')).toBe(false);
    expect(m('n=eq.10.0', 'numeric')).toBe(true);
    expect(m('n=in.(1,10)', 'int8')).toBe(true);
    expect(m('at=gte.2026-01-01', 'timestamptz')).toBe(true);
    expect(m('at=lt.2026-01-01 12:00:00+00', 'timestamptz')).toBe(false);
    expect(m('s=neq.a', 'text')).toBe(true);
    expect(m('s=lte.a', 'text')).toBe(false);
    expect(m('z=neq.x', 'text')).toBe(false);
  });
});
