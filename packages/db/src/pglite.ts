import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult, Tx } from './types.ts';

/**
 * The embedded database: a real Postgres compiled to WASM, running in this process. One
 * connection, so PGlite serialises statements itself; transactions hold it exclusively.
 * `dataDir` undefined means in memory (tests).
 */
export async function openPglite(dataDir?: string): Promise<Db> {
  // 0700: the database is nobody else's business (PGlite loosens the files inside; see the server's tightenDataDir).
  if (dataDir) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pg = await PGlite.create(dataDir ?? 'memory://');
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<R extends object>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const res = await q.query<R>(text, params ? [...params] : undefined);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
  });
  const base = wrap(pg);
  return {
    kind: 'pglite',
    query: base.query,
    transaction: (fn) =>
      pg.transaction((tx) => {
        const wrapped: Tx = { ...wrap(tx), exec: async (sql) => void (await tx.exec(sql)) };
        return fn(wrapped);
      }),
    exec: async (sql) => {
      await pg.exec(sql);
    },
    async listen(channel, onPayload) {
      const unlisten = await pg.listen(channel, onPayload);
      return async () => {
        if (!pg.closed) await unlisten();
      };
    },
    async close() {
      if (!pg.closed) await pg.close();
    },
  };
}
