import { join } from 'node:path';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';
import type { Db } from './types.ts';

export interface OpenDbOptions {
  /** A PostgreSQL server; when absent the embedded PGlite database is used. */
  databaseUrl?: string | undefined;
  /** Where PGlite keeps its files (`<dataDir>/data`); undefined with no URL means in memory. */
  dataDir?: string | undefined;
  poolSize?: number;
  /** Where PGlite runs (see PgliteOptions). @default 'worker' */
  pgliteThread?: 'worker' | 'main';
  /** statement_timeout of each pool connection (PostgreSQL only). */
  statementTimeoutMs?: number;
  onListenerError?: (err: Error) => void;
}

export function openDb(options: OpenDbOptions): Promise<Db> {
  if (options.databaseUrl) {
    return openPostgres({
      connectionString: options.databaseUrl,
      ...(options.poolSize ? { max: options.poolSize } : {}),
      ...(options.statementTimeoutMs ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
      ...(options.onListenerError ? { onListenerError: options.onListenerError } : {}),
    });
  }
  return openPglite(options.dataDir ? join(options.dataDir, 'data') : undefined, options.pgliteThread ? { thread: options.pgliteThread } : {});
}
