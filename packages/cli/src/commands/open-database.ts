import { openDb, type Db } from '@hallpass/db';
import type { Config } from '@hallpass/server';

/** The configured database, with a small pool: a command runs a few statements at a time. */
export function openDatabase(config: Readonly<Config>): Promise<Db> {
  return openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
}
