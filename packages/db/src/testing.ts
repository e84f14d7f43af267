import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';
import { createScratchDatabase } from './scratch.ts';
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

export { createScratchDatabase };
