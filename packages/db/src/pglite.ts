import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult, Tx } from './types.ts';

export interface PgliteOptions {
  /**
   * `worker` (default): PGlite runs in a worker thread of its own, so SQL and the server's
   * JavaScript use two cores. `main`: in the calling thread (one core; no thread hop per statement).
   */
  thread?: 'worker' | 'main';
}

/**
 * The embedded database: a real Postgres compiled to WASM. One connection, so PGlite serialises
 * statements itself; transactions hold it exclusively. `dataDir` undefined means in memory (tests).
 */
export async function openPglite(dataDir?: string, options: PgliteOptions = {}): Promise<Db> {
  // 0700: the database is nobody else's business (PGlite loosens the files inside; see the server's tightenDataDir).
  if (dataDir) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return (options.thread ?? 'worker') === 'worker' ? openPgliteWorker(dataDir) : openPgliteHere(dataDir);
}

async function openPgliteHere(dataDir: string | undefined): Promise<Db> {
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
    async dumpDataDir() {
      const file = await pg.dumpDataDir('none');
      return new Uint8Array(await file.arrayBuffer());
    },
    async close() {
      if (!pg.closed) await pg.close();
    },
  };
}

type Answer = { id: number; result?: unknown; error?: Record<string, unknown> & { message: string } };

/** PGlite in its own thread (pglite-worker.mjs), behind the same Db interface. */
async function openPgliteWorker(dataDir: string | undefined): Promise<Db> {
  const worker = new Worker(new URL('./pglite-worker.mjs', import.meta.url), { workerData: { dataDir } });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Map<string, Set<(payload: string) => void>>();
  let nextId = 1;
  let closed = false;
  let failure: Error | undefined;

  const failAll = (err: Error) => {
    failure ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (msg: Answer & { ready?: true; notify?: string; payload?: string }) => {
      if (msg.ready) return resolve();
      if (msg.notify !== undefined) {
        for (const l of listeners.get(msg.notify) ?? []) l(msg.payload ?? '');
        return;
      }
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(Object.assign(new Error(msg.error.message), msg.error));
      else p.resolve(msg.result);
    });
    worker.on('error', (err) => (failAll(err), reject(err)));
    worker.on('exit', (code) => {
      const err = new Error(`the embedded database's thread exited (code ${code})`);
      failAll(err);
      reject(err);
    });
  });
  await ready;

  const call = <T>(op: string, fields: Record<string, unknown> = {}): Promise<T> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, op, ...fields });
    });
  };
  const queryable = (tx?: number): Queryable => ({
    query: <R extends object>(text: string, params?: readonly unknown[]) => call<QueryResult<R>>('query', { text, params: params ? [...params] : undefined, tx }),
  });

  return {
    kind: 'pglite',
    ...queryable(),
    async transaction(fn) {
      const tx = await call<number>('begin');
      let result;
      try {
        result = await fn({ ...queryable(tx), exec: (sql) => call<void>('exec', { sql, tx }) });
      } catch (err) {
        await call('end', { tx, commit: false }).catch(() => {});
        throw err;
      }
      await call('end', { tx, commit: true });
      return result;
    },
    exec: (sql) => call<void>('exec', { sql }),
    async listen(channel, onPayload) {
      let set = listeners.get(channel);
      if (!set) {
        listeners.set(channel, (set = new Set()));
        await call('listen', { channel });
      }
      set.add(onPayload);
      return async () => {
        set.delete(onPayload);
        if (set.size === 0 && listeners.get(channel) === set) {
          listeners.delete(channel);
          if (!closed) await call('unlisten', { channel });
        }
      };
    },
    dumpDataDir: () => call<Uint8Array>('dumpDataDir'),
    async close() {
      if (closed) return;
      closed = true;
      await call('close').catch(() => {});
      await worker.terminate();
    },
  };
}
