import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPglite } from '../src/pglite.ts';
import { testBackend } from '../src/testing.ts';
import type { Db } from '../src/types.ts';

// The embedded database in its own thread keeps every part of the Db interface: statements with
// their types, transactions (commit and rollback), scripts, LISTEN/NOTIFY, errors with their
// PostgreSQL codes, a data-directory dump, and close.
describe.runIf(testBackend() === 'pglite')('PGlite in a worker thread', () => {
  let db: Db;
  const dir = mkdtempSync(join(tmpdir(), 'hallpass-pglite-worker-'));
  beforeAll(async () => {
    db = await openPglite(join(dir, 'data'), { thread: 'worker' });
    await db.exec('create table t (id int primary key, at timestamptz, bin bytea, doc jsonb)');
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs parameterised statements and brings back dates, bytes and json as the main-thread PGlite does', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const res = await db.query<{ id: number; at: Date; bin: Uint8Array; doc: { a: number } }>(
      'insert into t values ($1, $2, $3, $4) returning *',
      [1, at, Buffer.from([1, 2, 3]), JSON.stringify({ a: 1 })],
    );
    expect(res.rowCount).toBe(1);
    expect(res.rows[0]!.at).toEqual(at);
    expect([...res.rows[0]!.bin]).toEqual([1, 2, 3]);
    expect(res.rows[0]!.doc).toEqual({ a: 1 });
  });

  it('commits a transaction, and rolls one back when its function throws', async () => {
    await db.transaction(async (tx) => {
      await tx.query('insert into t (id) values (10)');
      await tx.exec('insert into t (id) values (11); insert into t (id) values (12)');
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query('insert into t (id) values (20)');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const { rows } = await db.query<{ id: number }>('select id from t where id >= 10 order by id');
    expect(rows.map((r) => r.id)).toEqual([10, 11, 12]);
  });

  it('reports a failing statement with its PostgreSQL error code, and the transaction rolls back', async () => {
    const err = await db
      .transaction(async (tx) => {
        await tx.query('insert into t (id) values (30)');
        await tx.query('insert into t (id) values (1)');
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '23505' });
    expect((await db.query('select 1 from t where id = 30')).rowCount).toBe(0);
  });

  it('delivers notifications to listeners until they unlisten', async () => {
    const got: string[] = [];
    const arrived = new Promise<void>((resolve) => {
      void db.listen('news', (payload) => {
        got.push(payload);
        resolve();
      }).then((unlisten) => (stop = unlisten));
    });
    let stop: (() => Promise<void>) | undefined;
    await new Promise((r) => setImmediate(r));
    await db.query(`select pg_notify('news', 'hello')`);
    await arrived;
    expect(got).toEqual(['hello']);
    await stop!();
  });

  it('dumps its data directory for backups, from inside its thread', async () => {
    const tar = await db.dumpDataDir!();
    expect(tar.byteLength).toBeGreaterThan(1024 * 1024);
    // A tar archive: "ustar" at offset 257 of the first header.
    expect(Buffer.from(tar.subarray(257, 262)).toString()).toBe('ustar');
  });

  it('refuses statements after close', async () => {
    const other = await openPglite(undefined, { thread: 'worker' });
    await other.close();
    await expect(other.query('select 1')).rejects.toThrow();
  });
});
