/** What every connection, pool or transaction can do: run one parameterised statement. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** An open transaction: statements, and scripts of several statements without parameters. */
export interface Tx extends Queryable {
  exec(sql: string): Promise<void>;
}

export type Unlisten = () => Promise<void>;

/**
 * One interface over PGlite (embedded, in-process) and node-postgres (a server). Feature code only
 * sees this, so the same SQL, migrations and tests run on both.
 */
export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` inside BEGIN/COMMIT; rolls back on throw. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * LISTENs on `channel`. `onReconnect` runs after a lost listener connection is back, so callers
   * can re-read what they might have missed (notifications are not queued across a reconnect).
   */
  listen(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void): Promise<Unlisten>;
  /** Connection pool figures for metrics; absent where there is no pool (PGlite is one connection). */
  poolStats?(): PoolStats;
  /**
   * Embedded database only: its data directory as an uncompressed tar (PGlite's `dumpDataDir`),
   * taken where the database runs (its worker thread), consistent with every committed statement.
   * A server is backed up with its own tools (pg_dump).
   */
  dumpDataDir?(): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface PoolStats {
  /** Connections open, idle ones included. */
  total: number;
  /** Connections checked out by a query or transaction. */
  inUse: number;
  /** Callers waiting for a connection because all are in use. */
  waiting: number;
  /** The most the pool opens. */
  max: number;
}
