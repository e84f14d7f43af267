import { openDb, type Db } from '@hallpass/db';
import type { Config } from '@hallpass/server';

/** Runs `fn` with the configured database (a small pool: a command runs a few statements at a time), closed after. */
export async function withDatabase<T>(config: Readonly<Config>, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
