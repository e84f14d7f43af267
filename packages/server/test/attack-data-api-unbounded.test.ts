import { testBackend } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { startTestServer, type TestServer } from './harness.ts';

// Attack (issue 9, finding 7): one request reads a whole table, or runs a statement for as long as
// it likes and holds a pooled connection meanwhile. Defence: a row cap (REST_MAX_ROWS, default 1,000,
// as PostgREST's max_rows) on every read and rpc, and a statement_timeout on every pool connection
// (DATABASE_STATEMENT_TIMEOUT_MS, default 5 s), answered as PostgREST answers it.
let server: TestServer;
let anonKey: string;

beforeAll(async () => {
  server = await startTestServer({ env: { DATABASE_STATEMENT_TIMEOUT_MS: '1500' } });
  anonKey = await signApiKey(server.deps, 'anon');
  // The setup itself may not be cut short on a busy machine: no timeout for this one transaction.
  await server.db.transaction((tx) =>
    tx.exec(`
    set local statement_timeout = 0;
    create table public.many (id integer primary key);
    insert into public.many select generate_series(1, 1500);
    create function public.all_many() returns setof public.many language sql stable as 'select * from public.many';
    create view public.slow as select pg_sleep(5)::text as slept;
    grant select on public.many, public.slow to anon;
  `),
  );
}, 300_000);
afterAll(() => server?.stop());

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}/rest/v1/${path}`, { headers: { apikey: anonKey, ...headers } });

describe('attack: unbounded data API requests', () => {
  it('caps a read without a limit at 1,000 rows, and says so in Content-Range', async () => {
    const res = await get('many?select=id', { prefer: 'count=exact' });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('0-999/1500');
    expect(await res.json()).toHaveLength(1000);
    const asked = await get('many?select=id&limit=5000');
    expect(await asked.json()).toHaveLength(1000);
  });

  it('caps a set-returning rpc at 1,000 rows', async () => {
    const res = await get('rpc/all_many');
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveLength(1000);
  });

  // PGlite runs each statement to its end on the server's own thread: it has no statement timer.
  it.skipIf(testBackend() === 'pglite')('cancels a statement past the timeout with 500 57014 and leaves no connection busy', async () => {
    const res = await get('slow');
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: '57014', message: 'canceling statement due to statement timeout', details: null, hint: null });
    // More requests than the pool has connections, all answered at once: nothing is left running.
    const many = await Promise.all(Array.from({ length: 15 }, () => get('many?select=id&limit=1')));
    expect(many.map((r) => r.status)).toEqual(Array(15).fill(200));
    const { rows } = await server.db.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and state = 'active' and query like '%pg_sleep%' and pid <> pg_backend_pid()",
    );
    expect(rows[0]!.n).toBe(0);
  });
});
