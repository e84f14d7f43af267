import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonical, checkFilter, columnKind, filterOps, filterRefusals, matchesFilter, maxInValues } from '../src/realtime/realtime.filters.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { apiKey, RawSocket, signIn } from './realtime-helpers.ts';

// The realtime postgres_changes filter parser under thousands of random and hostile inputs: the answer
// is a filter that names a readable column of the table, or a refusal with a code from one closed set
// and that code's fixed reason (which echoes nothing of the input, so no SQL text can come back).
// The PostgREST half lives in rest-parser.property.test.ts.

const columns = [{ name: 'id' }, { name: 'email' }, { name: 'name' }, { name: 'secret' }];
const selectable = new Set(['id', 'email', 'name']);
const refusalCodes = Object.keys(filterRefusals);

/** Fragments an attacker would try: SQL, quoting, nesting, escapes, operators we do not take. */
const hostile = fc.constantFrom(
  "'; drop table profiles; --",
  '" or 1=1 --',
  ') or (1=1',
  'select * from hallpass.sessions',
  '\\',
  '"',
  '(',
  ')',
  ',',
  '.',
  '=',
  'eq.',
  'in.(',
  '\u0000',
  '\n',
  '%00',
  '$1',
  '::text',
  '/*',
  '*/',
  'pg_sleep(10)',
  'like.',
  'is.null',
  'not.eq.',
  '😀',
  'a'.repeat(5000),
);
const column = fc.oneof(fc.constantFrom(...columns.map((c) => c.name), 'nope', 'Email', '1id', 'id;', ''), fc.string({ maxLength: 12 }));
const op = fc.oneof(fc.constantFrom(...filterOps, 'like', 'ilike', 'is', 'cs', 'fts', ''), fc.string({ maxLength: 5 }));
const value = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  hostile,
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), hostile), { maxLength: maxInValues + 20 }).map((xs) => `(${xs.join(',')})`),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 6 }).map((xs) => `(${xs.map((x) => JSON.stringify(x)).join(',')})`),
);
/** Shaped like a filter (column=op.value) but with any part wrong, or anything at all. */
const filterText = fc.oneof(
  fc.tuple(column, op, value).map(([c, o, v]) => `${c}=${o}.${v}`),
  fc.array(fc.oneof(hostile, fc.string({ maxLength: 10 })), { maxLength: 8 }).map((xs) => xs.join('')),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

describe('realtime filter parser, property', () => {
  it('answers every input with a readable-column filter or a coded refusal, never a throw or echoed text', () => {
    fc.assert(
      fc.property(filterText, (text) => {
        const checked = checkFilter(text, columns, selectable);
        if (checked.ok) {
          expect(selectable.has(checked.filter.column)).toBe(true);
          expect(filterOps).toContain(checked.filter.op);
          expect(checked.filter.values.length).toBeLessThanOrEqual(maxInValues);
          for (const v of checked.filter.values) expect(typeof v).toBe('string');
        } else {
          expect(refusalCodes).toContain(checked.code);
          expect(checked.reason).toBe(filterRefusals[checked.code]);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses a filter on a column the subscriber may not select, whatever the operator and value', () => {
    fc.assert(
      fc.property(fc.constantFrom(...filterOps), fc.string({ maxLength: 20 }), (o, v) => {
        const checked = checkFilter(o === 'in' ? `secret=in.(${v.replace(/[()]/g, '')})` : `secret=${o}.${v}`, columns, selectable);
        expect(checked).toMatchObject({ ok: false });
        if (!checked.ok) expect(['column_not_selectable', 'invalid_filter']).toContain(checked.code);
      }),
      { numRuns: 1000 },
    );
  });

  it('matches any parsed filter against any row without throwing, and never matches a null cell', () => {
    const kinds = ['int4', 'numeric', 'timestamptz', 'date', 'bool', 'text', 'jsonb', 'uuid'];
    fc.assert(
      fc.property(filterText, fc.constantFrom(...kinds), fc.jsonValue(), (text, type, cell) => {
        const checked = checkFilter(text, columns, null);
        if (!checked.ok) return;
        const kind = columnKind(type);
        const row = { [checked.filter.column]: cell };
        expect(typeof matchesFilter(checked.filter, kind, row)).toBe('boolean');
        expect(matchesFilter(checked.filter, kind, { [checked.filter.column]: null })).toBe(false);
        const key = canonical(kind, cell);
        expect(key === null || typeof key === 'string' || typeof key === 'number').toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads back every well-formed filter as written', () => {
    const plain = fc.stringMatching(/^[A-Za-z0-9@._ -]{1,30}$/);
    fc.assert(
      fc.property(fc.constantFrom('id', 'email', 'name'), fc.constantFrom(...filterOps.filter((o) => o !== 'in')), plain, (c, o, v) => {
        expect(checkFilter(`${c}=${o}.${v}`, columns, selectable)).toEqual({ ok: true, filter: { column: c, op: o, values: [v] } });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('realtime join with random filters, over a real socket', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.stop());

  it('answers every join with ok or a fixed refusal; the socket stays open and nothing internal leaks', async () => {
    const me = await signIn(server, 'prop');
    const socket = await RawSocket.open(server, { apikey: await apiKey(server, 'anon') });
    const fixed = new Set<string>(Object.values(filterRefusals));
    try {
      const samples = fc.sample(filterText, { numRuns: 300, seed: 9 });
      for (const [i, filter] of samples.entries()) {
        const topic = `realtime:prop-${i}`;
        const { reply } = await socket.join(topic, { postgres_changes: [{ event: '*', schema: 'public', table: 'profiles', filter }] }, me.token);
        if (reply.status === 'ok') continue;
        expect(reply.status, filter).toBe('error');
        // Only filter refusals, or the one for a filter on profiles' column list (tenant_id and the like).
        expect(fixed.has(reply.response.reason), `${JSON.stringify(filter)} -> ${reply.response.reason}`).toBe(true);
      }
      expect((await socket.call(null, 'phoenix', 'heartbeat', {})).status).toBe('ok');
    } finally {
      socket.close();
    }
  });
});
