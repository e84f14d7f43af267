import { splitQuotedList } from '../shared/postgrest-list.ts';

/**
 * postgres_changes filters as realtime-js sends them: `column=op.value`, with op one of eq, neq,
 * lt, lte, gt, gte, in (`in.(a,b,"c,d")`). A filter narrows what a subscriber asked for; it is not
 * a security boundary (RLS is, checked in Postgres), so it is matched here on the captured row.
 */
export const filterOps = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in'] as const;
export type FilterOp = (typeof filterOps)[number];

export interface Filter {
  column: string;
  op: FilterOp;
  /** One value, or several for `in`. */
  values: string[];
}

/** Longest filter text and most `in` values taken; Supabase Realtime caps `in` at 100 values too. */
export const maxFilterLength = 4096;
export const maxInValues = 100;

/** Parses a filter string; null when it is not one this server understands. */
export function parseFilter(text: string): Filter | null {
  if (text.length > maxFilterLength) return null;
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(eq|neq|lt|lte|gt|gte|in)\.(.*)$/s.exec(text);
  if (!m) return null;
  const [, column, op, rest] = m as unknown as [string, string, FilterOp, string];
  if (op !== 'in') return { column, op, values: [unquote(rest)] };
  const list = /^\((.*)\)$/s.exec(rest);
  if (!list) return null;
  const items = splitQuotedList(list[1]!);
  if (!items || items.length > maxInValues) return null;
  return { column, op, values: items.map((v) => unquote(v.trim())).filter((v) => v !== '') };
}

/** Why a filter was refused: a closed set of codes, each with a fixed reason that echoes no input. */
export const filterRefusals = {
  invalid_filter: `Invalid filter: use column=op.value with op eq, neq, lt, lte, gt, gte or in (at most ${maxInValues} values)`,
  unknown_column: 'Invalid filter: the table has no such column',
  column_not_selectable: 'Unable to subscribe to changes with given parameters: permission denied for the filter column; a filter may only use columns you can select',
} as const;
export type FilterRefusal = keyof typeof filterRefusals;

export type FilterCheck = { ok: true; filter: Filter } | { ok: false; code: FilterRefusal; reason: string };

/**
 * A join's filter against its table: well-formed, naming a column of the table that the subscriber
 * may select (`selectable`; null for the service role, which reads every column). A filter on a column
 * the subscriber cannot read would tell them its values by which events arrive.
 */
export function checkFilter(text: string, columns: ReadonlyArray<{ name: string }>, selectable: ReadonlySet<string> | null): FilterCheck {
  const filter = parseFilter(text);
  const refuse = (code: FilterRefusal): FilterCheck => ({ ok: false, code, reason: filterRefusals[code] });
  if (!filter) return refuse('invalid_filter');
  if (!columns.some((c) => c.name === filter.column)) return refuse('unknown_column');
  if (selectable && !selectable.has(filter.column)) return refuse('column_not_selectable');
  return { ok: true, filter };
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
}

export type ColumnKind = 'number' | 'time' | 'bool' | 'text';

/** How a column's values compare: numbers and times by value, everything else as text. */
export function columnKind(pgType: string): ColumnKind {
  if (/^(int[248]|float[48]|numeric|oid)$/.test(pgType)) return 'number';
  if (/^(timestamptz|timestamp|date)$/.test(pgType)) return 'time';
  if (pgType === 'bool') return 'bool';
  return 'text';
}

/** The comparable form of a value (a JSON cell or a filter literal), used as the index key too. */
export function canonical(kind: ColumnKind, v: unknown): string | number | null {
  if (v === null || v === undefined) return null;
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (kind === 'number') {
    const n = Number(s);
    return Number.isNaN(n) ? s : n;
  }
  if (kind === 'time') {
    const t = Date.parse(s.includes('T') ? s : s.replace(' ', 'T'));
    return Number.isNaN(t) ? s : t;
  }
  if (kind === 'bool') return s === 't' || s === 'true' ? 'true' : s === 'f' || s === 'false' ? 'false' : s;
  return s;
}

/** Whether a captured row satisfies the filter (SQL semantics: null matches nothing). */
export function matchesFilter(f: Filter, kind: ColumnKind, row: Record<string, unknown>): boolean {
  const value = canonical(kind, row[f.column]);
  if (value === null) return false;
  const wanted = f.values.map((v) => canonical(kind, v));
  const first = wanted[0];
  if (first === undefined || first === null) return false;
  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  switch (f.op) {
    case 'eq':
      return value === first;
    case 'neq':
      return value !== first;
    case 'lt':
      return cmp(value, first) < 0;
    case 'lte':
      return cmp(value, first) <= 0;
    case 'gt':
      return cmp(value, first) > 0;
    case 'gte':
      return cmp(value, first) >= 0;
    case 'in':
      return wanted.includes(value);
  }
}
