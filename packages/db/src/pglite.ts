import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.ts';
import type { Db, Queryable, QueryResult, Tx } from './types.ts';

export interface PgliteOptions {
  /** A data-dir tarball (`Db.snapshotDataDir`) to start from; the directory must not hold a database. */
  loadDataDir?: Blob;
}

/**
 * The embedded database: a real Postgres compiled to WASM, running in this process. One
 * connection, so PGlite serialises statements itself; transactions hold it exclusively.
 * `dataDir` undefined means in memory (tests). A data dir is locked (`<dataDir>.lock`) while open:
 * two processes on one PGlite directory would corrupt it.
 */
export async function openPglite(dataDir?: string, options: PgliteOptions = {}): Promise<Db> {
  let unlock = () => {};
  if (dataDir) {
    mkdirSync(dirname(dataDir), { recursive: true, mode: 0o700 });
    unlock = lockDataDir(dataDir);
  }
  let pg: PGlite;
  try {
    if (dataDir) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    pg = await PGlite.create(dataDir ?? 'memory://', options.loadDataDir ? { loadDataDir: options.loadDataDir } : {});
  } catch (err) {
    unlock();
    throw err;
  }
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<R extends object>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const res = await q.query<R>(text, params ? [...params] : undefined);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
  });
  const base = wrap(pg);
  const transaction: Db['transaction'] = (fn) =>
    pg.transaction((tx) => {
      const wrapped: Tx = { ...wrap(tx), exec: async (sql) => void (await tx.exec(sql)) };
      return fn(wrapped);
    });
  return {
    kind: 'pglite',
    query: base.query,
    transaction,
    exec: async (sql) => {
      await pg.exec(sql);
    },
    async listen(channel, onPayload) {
      const unlisten = await pg.listen(channel, onPayload);
      return async () => {
        if (!pg.closed) await unlisten();
      };
    },
    snapshotDataDir: (inside) =>
      // Inside a transaction nothing else runs (PGlite has one connection and queues the rest), so
      // what `inside` reads and the files copied are the same state. The checkpoint first writes
      // every committed change to the data files, so the copy needs no WAL replay to be complete.
      transaction(async (tx) => {
        await tx.exec('checkpoint');
        const result = await inside(tx);
        const tarball = await pg.dumpDataDir('gzip');
        return { tarball, result };
      }),
    async close() {
      try {
        if (!pg.closed) await pg.close();
      } finally {
        unlock();
      }
    },
  };
}
