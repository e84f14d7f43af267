import { restErrors } from './rest-errors.ts';
import { splitQuotedList } from '../shared/postgrest-list.ts';

// PostgREST's URL grammar, as @supabase/postgrest-js 2.x writes it: select trees with embeds, spreads,
// JSON paths, casts and aggregates; filters with every operator, not/or/and trees; order, limit and
// offset per embed level. Parsing only: names are checked against the catalog later, values become
// bind parameters. Everything a request can make is bounded (items, depth, length), so a hostile
// query string costs a 400, never a large plan.

export const filterOps = [
  'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'is', 'isdistinct', 'in',
  'cs', 'cd', 'ov', 'sl', 'sr', 'nxl', 'nxr', 'adj', 'fts', 'plfts', 'phfts', 'wfts',
] as const;
export type FilterOp = (typeof filterOps)[number];

export interface JsonStep {
  arrow: '->' | '->>';
  key: string;
}

/** A column, optionally followed by a JSON path (`data->a->>b`). */
export interface Field {
  name: string;
  json: JsonStep[];
}

export const aggregates = ['count', 'sum', 'avg', 'min', 'max'] as const;
export type Aggregate = (typeof aggregates)[number];

export type SelectItem =
  | { kind: 'star' }
  | { kind: 'column'; field: Field; alias?: string; cast?: string; aggregate?: Aggregate; aggregateCast?: string }
  /** `count()`: rows per group. */
  | { kind: 'count'; alias?: string }
  | EmbedItem;

export interface EmbedItem {
  kind: 'embed';
  name: string;
  alias?: string;
  hint?: string;
  join?: 'inner' | 'left';
  spread: boolean;
  select: SelectItem[];
}

export interface Leaf {
  kind: 'leaf';
  field: Field;
  op: FilterOp;
  negate: boolean;
  /** A list for `in`; a keyword for `is`; else the literal text. */
  value: string | string[];
  /** The text search configuration of `fts(english)`. */
  language?: string;
}
export interface Tree {
  kind: 'and' | 'or';
  negate: boolean;
  items: Condition[];
}
export type Condition = Leaf | Tree;

export interface OrderTerm {
  field: Field;
  /** `order=author(name)`: a column of a to-one embed. */
  relation?: string;
  descending: boolean;
  nulls?: 'first' | 'last';
}

/** What applies at one level of the tree: '' is the top, `posts`, `posts.comments` are embeds (by alias or name). */
export interface Level {
  conditions: Condition[];
  order: OrderTerm[];
  limit?: number;
  offset?: number;
}

export interface ParsedQuery {
  select: SelectItem[];
  levels: Map<string, Level>;
  onConflict?: string[];
  columns?: string[];
  /** Query parameters that are not filters: rpc arguments on GET. */
  rest: Map<string, string>;
}

export interface Preferences {
  return: 'minimal' | 'representation' | 'headers-only';
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  count?: 'exact' | 'planned' | 'estimated';
  missingDefault: boolean;
  rollback: boolean;
  strict: boolean;
  maxAffected?: number;
  singleObject: boolean;
  /** Preferences given that we did not understand (PGRST122 with handling=strict). */
  invalid: string[];
}

// Bounds on what one request may ask for.
const maxItems = 200;
const maxDepth = 8;
const maxConditions = 300;
const maxLength = 8_000;

const isKeywords = new Set(['null', 'not_null', 'true', 'false', 'unknown']);
// Casts: a closed set of type names, so a cast never puts request text into SQL.
export const castTypes = new Set([
  'text', 'varchar', 'char', 'int', 'integer', 'int2', 'int4', 'int8', 'smallint', 'bigint', 'numeric', 'real',
  'float4', 'float8', 'boolean', 'bool', 'json', 'jsonb', 'date', 'time', 'timestamp', 'timestamptz', 'uuid', 'interval',
]);

const identChar = /[\p{L}\p{N}_$ ]/u;

class Scanner {
  i = 0;
  constructor(
    readonly s: string,
    readonly what: string,
  ) {}
  peek(n = 0) {
    return this.s[this.i + n];
  }
  starts(t: string) {
    return this.s.startsWith(t, this.i);
  }
  eat(t: string) {
    if (!this.starts(t)) return false;
    this.i += t.length;
    return true;
  }
  skipSpace() {
    while (this.peek() === ' ') this.i++;
  }
  done() {
    return this.i >= this.s.length;
  }
  fail(expected: string): never {
    const at = this.s.slice(this.i, this.i + 20);
    throw restErrors.parse(
      `"failed to parse ${this.what} parameter (${this.s.slice(0, 60)})" (line 1, column ${this.i + 1})`,
      `unexpected "${at[0] ?? 'end of input'}" expecting ${expected}`,
    );
  }
  /** A bare or double-quoted identifier. */
  name(): string {
    if (this.peek() === '"') {
      let out = '';
      this.i++;
      while (!this.done()) {
        const ch = this.s[this.i++]!;
        if (ch === '"') {
          if (this.peek() === '"') {
            out += '"';
            this.i++;
            continue;
          }
          if (out === '') this.fail('a name');
          return out;
        }
        if (ch === '\\' && !this.done()) out += this.s[this.i++];
        else out += ch;
      }
      this.fail('a closing quote');
    }
    const start = this.i;
    while (!this.done() && identChar.test(this.peek()!) && !this.starts('->')) this.i++;
    const out = this.s.slice(start, this.i).trim();
    if (!out) this.fail('a name');
    return out;
  }
  field(): Field {
    return { name: this.name(), json: this.path() };
  }
  /** `->a->>b` after a column name. */
  path(): JsonStep[] {
    const json: JsonStep[] = [];
    for (;;) {
      const arrow = this.eat('->>') ? '->>' : this.eat('->') ? '->' : null;
      if (!arrow) return json;
      if (json.length >= 16) this.fail('a shorter JSON path');
      json.push({ arrow, key: this.name() });
    }
  }
  cast(): string | undefined {
    if (!this.eat('::')) return undefined;
    const start = this.i;
    while (!this.done() && /[a-z0-9_]/i.test(this.peek()!)) this.i++;
    const t = this.s.slice(start, this.i).toLowerCase();
    if (!castTypes.has(t)) throw restErrors.parse(`Unsupported cast type "${t}"`, `Casts may use: ${[...castTypes].join(', ')}`);
    return t;
  }
}

interface Counter {
  items: number;
}

function parseItems(sc: Scanner, depth: number, counter: Counter): SelectItem[] {
  if (depth > maxDepth) throw restErrors.parse(`Embedding is nested more than ${maxDepth} levels deep`);
  const items: SelectItem[] = [];
  sc.skipSpace();
  if (sc.peek() === ')') return items;
  for (;;) {
    if (++counter.items > maxItems) throw restErrors.parse(`The select list has more than ${maxItems} items`);
    items.push(parseItem(sc, depth, counter));
    sc.skipSpace();
    if (!sc.eat(',')) break;
    sc.skipSpace();
  }
  return items;
}

function parseItem(sc: Scanner, depth: number, counter: Counter): SelectItem {
  sc.skipSpace();
  if (sc.eat('*')) return { kind: 'star' };
  const spread = sc.eat('...');
  let alias: string | undefined;
  let name = sc.name();
  if (sc.peek() === ':' && sc.peek(1) !== ':') {
    sc.i++;
    alias = name;
    name = sc.name();
  }
  if (!spread && name === 'count' && sc.starts('()')) {
    sc.i += 2;
    return alias ? { kind: 'count', alias } : { kind: 'count' };
  }
  if (spread || sc.peek() === '!' || sc.peek() === '(') {
    const e: EmbedItem = { kind: 'embed', name, spread, select: [] };
    if (alias) e.alias = alias;
    while (sc.eat('!')) {
      const h = sc.name();
      if (h === 'inner' || h === 'left') e.join = h;
      else if (e.hint === undefined) e.hint = h;
      else sc.fail('one hint');
    }
    if (!sc.eat('(')) sc.fail('"("');
    e.select = parseItems(sc, depth + 1, counter);
    if (!sc.eat(')')) sc.fail('")"');
    return e;
  }
  const field: Field = { name, json: sc.path() };
  const item: SelectItem & { kind: 'column' } = { kind: 'column', field };
  if (alias) item.alias = alias;
  const cast = sc.cast();
  if (sc.peek() === '.') {
    sc.i++;
    const fn = sc.name() as Aggregate;
    if (!aggregates.includes(fn) || !sc.eat('()')) sc.fail(`an aggregate (${aggregates.join('(), ')}())`);
    item.aggregate = fn;
    if (cast) item.cast = cast;
    const outer = sc.cast();
    if (outer) item.aggregateCast = outer;
    return item;
  }
  if (cast) item.cast = cast;
  return item;
}

export function parseSelect(raw: string | null): SelectItem[] {
  if (raw === null || raw.trim() === '') return [{ kind: 'star' }];
  const sc = new Scanner(raw, 'select');
  const items = parseItems(sc, 0, { items: 0 });
  if (!sc.done()) sc.fail('"," or end of input');
  return items;
}

/** Splits on commas outside quotes, parentheses and braces. */
function splitTop(s: string, what: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '\\' && i + 1 < s.length) {
        cur += ch + s[++i];
        continue;
      }
      if (ch === '"') quoted = false;
      cur += ch;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === '(' || ch === '{' || ch === '[') depth++;
    else if (ch === ')' || ch === '}' || ch === ']') depth--;
    if (depth < 0) throw restErrors.parse(`Unbalanced parentheses in ${what}`);
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted || depth !== 0) throw restErrors.parse(`Unbalanced quotes or parentheses in ${what}`);
  out.push(cur);
  return out;
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

function parseInList(raw: string): string[] {
  if (!raw.startsWith('(') || !raw.endsWith(')')) throw restErrors.parse(`"failed to parse filter (in.${raw})"`, 'The "in" operator takes a list in parentheses: in.(a,b)');
  const inner = raw.slice(1, -1);
  if (inner === '') return [];
  const items = splitQuotedList(inner);
  if (!items) throw restErrors.parse('Unterminated double quote in an "in" list');
  return items.map((v) => unquote(v.trim()));
}

/** `[not.]op[(language)].value` for `field`. */
function parseOperation(field: Field, raw: string, inTree: boolean): Leaf {
  let rest = raw;
  let negate = false;
  if (rest.startsWith('not.')) {
    negate = true;
    rest = rest.slice(4);
  }
  const m = /^([a-z]+)(?:\(([^()]*)\))?\./.exec(rest);
  const op = m?.[1] as FilterOp | undefined;
  if (!m || !op || !filterOps.includes(op)) {
    throw restErrors.parse(`"failed to parse filter (${raw.slice(0, 60)})"`, `Unknown or missing operator. Operators: ${filterOps.join(', ')}`);
  }
  const language = m[2];
  if (language !== undefined && !['fts', 'plfts', 'phfts', 'wfts'].includes(op)) throw restErrors.parse(`Only full-text operators take a language, not "${op}"`);
  let operand = rest.slice(m[0].length);
  const leaf: Leaf = { kind: 'leaf', field, op, negate, value: operand };
  if (language) leaf.language = language;
  if (op === 'in') {
    leaf.value = parseInList(operand);
    return leaf;
  }
  if (inTree) operand = unquote(operand);
  if (op === 'is') {
    const kw = operand.toLowerCase();
    if (!isKeywords.has(kw)) throw restErrors.parse(`"failed to parse filter (is.${operand.slice(0, 40)})"`, '"is" takes null, not_null, true, false or unknown');
    leaf.value = kw;
    return leaf;
  }
  // `*` stands for `%` in patterns (it survives URLs unescaped).
  leaf.value = op === 'like' || op === 'ilike' ? operand.replace(/\*/g, '%') : operand;
  return leaf;
}

function parseFieldText(text: string, what: string): Field {
  const sc = new Scanner(text, what);
  const f = sc.field();
  if (!sc.done()) sc.fail('a column or JSON path');
  return f;
}

interface TreeCounter {
  n: number;
}

/** `(a.eq.1,or(b.gt.2,c.is.null))`: the inside of an or/and. */
function parseTree(kind: 'and' | 'or', negate: boolean, raw: string, depth: number, count: TreeCounter): Tree {
  if (depth > maxDepth) throw restErrors.parse(`Logic trees are nested more than ${maxDepth} levels deep`);
  if (!raw.startsWith('(') || !raw.endsWith(')')) throw restErrors.parse(`"failed to parse logic tree (${raw.slice(0, 60)})"`, 'Write or=(a.eq.1,b.eq.2)');
  const items = splitTop(raw.slice(1, -1), 'logic tree').map((item): Condition => {
    if (++count.n > maxConditions) throw restErrors.parse(`A query may hold at most ${maxConditions} conditions`);
    const t = item.trim();
    const sub = /^(not\.)?(and|or)(\(.*\))$/s.exec(t);
    if (sub) return parseTree(sub[2] as 'and' | 'or', Boolean(sub[1]), sub[3]!, depth + 1, count);
    const sc = new Scanner(t, 'logic tree');
    const field = sc.field();
    if (!sc.eat('.')) sc.fail('"." and an operator');
    return parseOperation(field, t.slice(sc.i), true);
  });
  if (items.length === 0 || (items.length === 1 && raw === '()')) throw restErrors.parse('An empty logic tree');
  return { kind, negate, items };
}

function parseOrder(raw: string): OrderTerm[] {
  return splitTop(raw, 'order').map((term) => {
    const t = term.trim();
    const sc = new Scanner(t, 'order');
    let relation: string | undefined;
    let field = sc.field();
    if (sc.eat('(')) {
      relation = field.name;
      field = sc.field();
      if (!sc.eat(')')) sc.fail('")"');
    }
    const mods = t.slice(sc.i).split('.').filter(Boolean);
    if (t.slice(sc.i) !== '' && !t.slice(sc.i).startsWith('.')) sc.fail('"." and asc, desc, nullsfirst or nullslast');
    for (const mod of mods) if (!['asc', 'desc', 'nullsfirst', 'nullslast'].includes(mod)) sc.fail('asc, desc, nullsfirst or nullslast');
    const o: OrderTerm = { field, descending: mods.includes('desc') };
    if (relation) o.relation = relation;
    if (mods.includes('nullsfirst')) o.nulls = 'first';
    if (mods.includes('nullslast')) o.nulls = 'last';
    return o;
  });
}

function parseCount(raw: string, what: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw restErrors.parse(`"failed to parse ${what} parameter (${raw.slice(0, 20)})"`, 'A non-negative integer');
  return Number(raw);
}

/** Splits a key like `posts.comments.order` on dots outside quotes. */
function splitKey(key: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of key) {
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

const levelKeys = new Set(['order', 'limit', 'offset', 'or', 'and']);
const topKeys = new Set(['select', 'on_conflict', 'columns']);

/**
 * The URL of a `/rest/v1/<table>` or `/rest/v1/rpc/<fn>` request, parsed; throws PGRST100 on what
 * we do not speak. `args` names the rpc arguments of a GET call: those parameters are not filters.
 */
export function parseQuery(params: URLSearchParams, args: ReadonlySet<string> = new Set()): ParsedQuery {
  const levels = new Map<string, Level>();
  const level = (path: string) => {
    let l = levels.get(path);
    if (!l) levels.set(path, (l = { conditions: [], order: [] }));
    return l;
  };
  level('');
  const rest = new Map<string, string>();
  const count: TreeCounter = { n: 0 };
  let length = 0;
  for (const [key, value] of params) {
    length += key.length + value.length;
    if (length > maxLength) throw restErrors.parse(`The query string is longer than ${maxLength} characters`);
    if (topKeys.has(key)) continue;
    if (args.has(key)) {
      rest.set(key, value);
      continue;
    }
    const parts = splitKey(key);
    let last = parts.pop()!;
    let negate = false;
    if ((last === 'or' || last === 'and') && parts[parts.length - 1] === 'not') {
      parts.pop();
      negate = true;
    }
    const path = parts.map((p) => unquote(p)).join('.');
    if (levelKeys.has(last)) {
      const l = level(path);
      if (last === 'order') l.order = parseOrder(value);
      else if (last === 'limit') l.limit = parseCount(value, 'limit');
      else if (last === 'offset') l.offset = parseCount(value, 'offset');
      else {
        if (++count.n > maxConditions) throw restErrors.parse(`A query may hold at most ${maxConditions} conditions`);
        l.conditions.push(parseTree(last as 'or' | 'and', negate, value, 1, count));
      }
      continue;
    }
    if (last === '') throw restErrors.parse(`"failed to parse filter key (${key.slice(0, 60)})"`);
    if (++count.n > maxConditions) throw restErrors.parse(`A query may hold at most ${maxConditions} conditions`);
    if (negate) last = `not.${last}`;
    level(path).conditions.push(parseOperation(parseFieldText(last, 'filter'), value, false));
  }
  const q: ParsedQuery = { select: parseSelect(params.get('select')), levels, rest };
  const onConflict = params.get('on_conflict');
  if (onConflict) q.onConflict = listOfNames(onConflict, 'on_conflict');
  const columns = params.get('columns');
  if (columns) q.columns = listOfNames(columns, 'columns');
  return q;
}

function listOfNames(raw: string, what: string): string[] {
  const items = splitQuotedList(raw);
  if (!items) throw restErrors.parse(`Unterminated double quote in ${what}`);
  return items.map((c) => {
    const sc = new Scanner(c.trim(), what);
    const n = sc.name();
    if (!sc.done()) sc.fail('a column name');
    return n;
  });
}

/** `Prefer` (one header or several, comma-separated). */
export function parsePrefer(header: string | undefined): Preferences {
  const p: Preferences = { return: 'minimal', missingDefault: false, rollback: false, strict: false, singleObject: false, invalid: [] };
  for (const token of (header ?? '').split(',').map((t) => t.trim())) {
    if (!token) continue;
    const [k, v] = token.toLowerCase().split('=').map((s) => s.trim());
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'headers-only')) p.return = v;
    else if (k === 'resolution' && (v === 'merge-duplicates' || v === 'ignore-duplicates')) p.resolution = v;
    else if (k === 'count' && (v === 'exact' || v === 'planned' || v === 'estimated')) p.count = v;
    else if (k === 'missing' && (v === 'default' || v === 'null')) p.missingDefault = v === 'default';
    else if (k === 'tx' && (v === 'rollback' || v === 'commit')) p.rollback = v === 'rollback';
    else if (k === 'handling' && (v === 'strict' || v === 'lenient')) p.strict = v === 'strict';
    else if (k === 'max-affected' && v !== undefined && /^\d{1,9}$/.test(v)) p.maxAffected = Number(v);
    else if (k === 'params' && v === 'single-object') p.singleObject = true;
    else if (k === 'timezone') continue;
    else p.invalid.push(token);
  }
  return p;
}
