import { restErrors } from './rest-errors.ts';
import { splitQuotedList } from '../shared/postgrest-list.ts';

// The subset of PostgREST's URL grammar that supabase-js sends for select/insert/update/upsert/delete.
// Parsing only: names are checked against the catalog later, values become bind parameters.

export const filterOps = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'is', 'in'] as const;
export type FilterOp = (typeof filterOps)[number];

export interface Filter {
  column: string;
  op: FilterOp;
  negate: boolean;
  /** A list for `in`; a keyword (null, true, false, unknown) for `is`; else the literal text. */
  value: string | string[];
}

export interface SelectItem {
  column: string;
  alias?: string;
}

export interface OrderTerm {
  column: string;
  descending: boolean;
  nulls?: 'first' | 'last';
}

export interface ParsedQuery {
  /** `'*'` or a list of columns (with aliases). */
  select: '*' | SelectItem[];
  filters: Filter[];
  order: OrderTerm[];
  limit?: number;
  offset?: number;
  onConflict?: string[];
  columns?: string[];
}

export interface Preferences {
  return: 'minimal' | 'representation' | 'headers-only';
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  count?: 'exact' | 'planned' | 'estimated';
  missingDefault: boolean;
}

const reserved = new Set(['select', 'order', 'limit', 'offset', 'on_conflict', 'columns']);
const isKeywords = new Set(['null', 'true', 'false', 'unknown']);

/** A column name: bare, or double-quoted as supabase-js writes `columns` ("a","b"). */
function parseName(raw: string, what: string): string {
  const s = raw.trim();
  if (s.startsWith('"')) {
    if (s.length < 2 || !s.endsWith('"')) throw restErrors.parse(`Unterminated quoted name in ${what}`);
    return s.slice(1, -1).replace(/""/g, '"');
  }
  if (s === '' || /[(),:."]/.test(s)) throw restErrors.parse(`Unsupported ${what}: "${s}"`, 'Embedded resources, casts and JSON paths are not supported.');
  return s;
}

/** Splits on commas outside double quotes. */
function splitList(s: string): string[] {
  const items = splitQuotedList(s);
  if (!items) throw restErrors.parse('Unterminated double quote');
  return items;
}

function parseSelect(raw: string | null): ParsedQuery['select'] {
  if (raw === null || raw === '' || raw === '*') return '*';
  return splitList(raw).map((item) => {
    if (item.trim() === '*') throw restErrors.parse('"*" cannot be combined with other columns');
    const colon = item.indexOf(':');
    // `alias:column`, but not `column::cast`.
    if (colon > 0 && item[colon + 1] !== ':') {
      return { alias: parseName(item.slice(0, colon), 'select alias'), column: parseName(item.slice(colon + 1), 'select') };
    }
    return { column: parseName(item, 'select') };
  });
}

function parseInList(raw: string): string[] {
  if (!raw.startsWith('(') || !raw.endsWith(')')) throw restErrors.parse(`"in" takes a list in parentheses: ${raw}`);
  const inner = raw.slice(1, -1);
  if (inner === '') return [];
  return splitList(inner).map((v) => {
    const t = v.trim();
    if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) return t.slice(1, -1).replace(/\\(.)/g, '$1');
    return t;
  });
}

function parseFilter(column: string, raw: string): Filter {
  let rest = raw;
  let negate = false;
  if (rest.startsWith('not.')) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf('.');
  const op = (dot < 0 ? rest : rest.slice(0, dot)) as FilterOp;
  if (!filterOps.includes(op)) {
    throw restErrors.parse(`Unsupported filter operator in ${column}=${raw}`, `Supported: ${filterOps.join(', ')}`);
  }
  if (dot < 0) throw restErrors.parse(`Missing value in ${column}=${raw}`);
  const operand = rest.slice(dot + 1);
  if (op === 'in') return { column, op, negate, value: parseInList(operand) };
  if (op === 'is') {
    const kw = operand.toLowerCase();
    if (!isKeywords.has(kw)) throw restErrors.parse(`"is" takes null, true, false or unknown, not ${operand}`);
    return { column, op, negate, value: kw };
  }
  // PostgREST lets `*` stand for `%` in patterns (it survives URLs unescaped).
  const value = op === 'like' || op === 'ilike' ? operand.replace(/\*/g, '%') : operand;
  return { column, op, negate, value };
}

function parseOrder(raw: string | null): OrderTerm[] {
  if (!raw) return [];
  return splitList(raw).map((term) => {
    // The column may be quoted and contain dots; modifiers follow the last quote.
    const m = /^("(?:[^"]|"")*"|[^.]+)((?:\.(?:asc|desc|nullsfirst|nullslast))*)$/.exec(term.trim());
    if (!m) throw restErrors.parse(`Unsupported order term: ${term}`);
    const mods = m[2]!.split('.').filter(Boolean);
    const t: OrderTerm = { column: parseName(m[1]!, 'order'), descending: mods.includes('desc') };
    if (mods.includes('nullsfirst')) t.nulls = 'first';
    if (mods.includes('nullslast')) t.nulls = 'last';
    return t;
  });
}

function parseCount(raw: string | null, what: string): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw restErrors.parse(`"${what}" must be a non-negative integer`);
  return Number(raw);
}

/** The URL of a `/rest/v1/<table>` request, parsed; throws PGRST100 on what we do not speak. */
export function parseQuery(params: URLSearchParams): ParsedQuery {
  const filters: Filter[] = [];
  for (const [key, value] of params) {
    if (reserved.has(key)) continue;
    if (key === 'or' || key === 'and' || key === 'not.or' || key === 'not.and' || key.includes('.')) {
      throw restErrors.parse(`Unsupported query parameter: ${key}`, 'Logical trees (or/and) and embedded resources are not supported.');
    }
    filters.push(parseFilter(parseName(key, 'filter'), value));
  }
  const q: ParsedQuery = { select: parseSelect(params.get('select')), filters, order: parseOrder(params.get('order')) };
  const limit = parseCount(params.get('limit'), 'limit');
  const offset = parseCount(params.get('offset'), 'offset');
  if (limit !== undefined) q.limit = limit;
  if (offset !== undefined) q.offset = offset;
  const onConflict = params.get('on_conflict');
  if (onConflict) q.onConflict = splitList(onConflict).map((c) => parseName(c, 'on_conflict'));
  const columns = params.get('columns');
  if (columns) q.columns = splitList(columns).map((c) => parseName(c, 'columns'));
  return q;
}

/** `Prefer` (one header or several, comma-separated): the preferences we honour, the rest ignored. */
export function parsePrefer(header: string | undefined): Preferences {
  const p: Preferences = { return: 'minimal', missingDefault: false };
  for (const token of (header ?? '').split(',').map((t) => t.trim().toLowerCase())) {
    const [k, v] = token.split('=');
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'headers-only')) p.return = v;
    else if (k === 'resolution' && (v === 'merge-duplicates' || v === 'ignore-duplicates')) p.resolution = v;
    else if (k === 'count' && (v === 'exact' || v === 'planned' || v === 'estimated')) p.count = v;
    else if (k === 'missing' && v === 'default') p.missingDefault = true;
  }
  return p;
}
