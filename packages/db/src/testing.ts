import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';
import type { Db } from './types.ts';

/** Which backend this test run uses: `postgres` when HALLPASS_TEST_BACKEND says so. */
export function testBackend(): 'pglite' | 'postgres' {
  return process.env.HALLPASS_TEST_BACKEND === 'postgres' ? 'postgres' : 'pglite';
}

export interface TestDatabase {
  db: Db;
  /** Set on the postgres backend: the URL of this test's own database. */
  url?: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test file: an in-memory PGlite, or a new database on the server
 * at TEST_DATABASE_URL, dropped afterwards. Tests never share data.
 */
export async function createTestDatabase(options: { statementTimeoutMs?: number } = {}): Promise<TestDatabase> {
  if (testBackend() === 'pglite') {
    const db = await openPglite();
    return { db, drop: () => db.close() };
  }
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('HALLPASS_TEST_BACKEND=postgres needs TEST_DATABASE_URL');
  const scratch = await createScratchDatabase(adminUrl, 'hallpass_test');
  const db = await openPostgres({ connectionString: scratch.url, max: 10, ...options });
  return {
    db,
    url: scratch.url,
    async drop() {
      await db.close();
      await scratch.drop();
    },
  };
}

/**
 * A new, empty database on the server at `adminUrl` (a user that may create databases), named
 * `<prefix>_<random>`; `drop()` removes it, closing whatever is still connected.
 */
export async function createScratchDatabase(adminUrl: string, prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  // The name is ours (prefix and hex), never user input.
  await admin(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}
