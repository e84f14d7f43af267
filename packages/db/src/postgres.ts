import pg from 'pg';
import { poolChannel, type PoolTiming } from './diagnostics.ts';
import { preparedName } from './prepared.ts';
import type { Db, Queryable, QueryResult, Tx } from './types.ts';

export interface PostgresOptions {
  connectionString: string;
  /** Pool size. @default 20 */
  max?: number;
  /** How long opening a connection may take before it fails. @default 5000 */
  connectTimeoutMs?: number;
  /**
   * statement_timeout of every pool connection, in ms (a startup parameter, so it costs no statement).
   * A statement that runs longer is cancelled by the server itself and its connection is idle again.
   * @default no timeout
   */
  statementTimeoutMs?: number;
  /** Called when the listener connection fails; it reconnects by itself. */
  onListenerError?: (err: Error) => void;
}

// int8 and numeric come back as strings by default; counts and ids we read are well inside 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

/** A PostgreSQL server through a node-postgres pool, plus one dedicated LISTEN connection. */
export async function openPostgres(options: PostgresOptions): Promise<Db> {
  const max = options.max ?? 20;
  // A connect that cannot finish (server unreachable, not refusing) fails after this instead of
  // hanging the request that waits on it.
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max,
    // A fixed-size pool once warm (as HikariCP's default): with node-postgres's default of closing
    // a connection idle for 10 s, the pool shrank between bursts and the next burst paid a new
    // backend, its session setup and the first PREPARE of every hot statement inside a request (a
    // pool wait of 25-80 ms, the sign-in bench's p99 spikes at concurrency 32).
    min: max,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
  });
  // An idle client that errors (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  await pool.query('select 1');

  const listeners = new Map<string, Set<{ onPayload: (p: string) => void; onReconnect?: () => void }>>();
  let listener: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let closed = false;

  const connectListener = (): Promise<pg.Client> => {
    connecting ??= (async () => {
      const client = new pg.Client({ connectionString: options.connectionString, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000 });
      client.on('notification', (msg) => {
        for (const l of listeners.get(msg.channel) ?? []) l.onPayload(msg.payload ?? '');
      });
      client.on('error', (err) => {
        options.onListenerError?.(err);
        if (listener === client) listener = null;
        connecting = null;
        client.end().catch(() => {});
        if (!closed && listeners.size > 0) scheduleReconnect(250);
      });
      await client.connect();
      for (const channel of listeners.keys()) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      listener = client;
      return client;
    })();
    connecting.catch(() => {
      connecting = null;
    });
    return connecting;
  };

  const scheduleReconnect = (delay: number) => {
    const timer = setTimeout(() => {
      if (closed) return;
      connectListener().then(
        () => {
          for (const set of listeners.values()) for (const l of set) l.onReconnect?.();
        },
        () => scheduleReconnect(Math.min(delay * 2, 5000)),
      );
    }, delay);
    timer.unref();
  };

  // With a subscriber (the bench's probe), pool statements take their connection themselves so the
  // wait for it is measured apart from the statement.
  const timedPoolQuery = async (statement: string | pg.QueryConfig, params: unknown[] | undefined): Promise<pg.QueryResult> => {
    const t0 = performance.now();
    const client = await pool.connect();
    const t1 = performance.now();
    try {
      return await client.query(statement, params);
    } finally {
      client.release();
      const timing: PoolTiming = { waitMs: t1 - t0, runMs: performance.now() - t1 };
      poolChannel.publish(timing);
    }
  };

  const wrap = (q: pg.Pool | pg.PoolClient): Queryable => ({
    async query<R extends object>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      // Hot statements (see `prepared`) are parsed and planned once per connection.
      const name = preparedName(text);
      const statement: string | pg.QueryConfig = name ? { name, text } : text;
      const res =
        q === pool && poolChannel.hasSubscribers
          ? await timedPoolQuery(statement, params as unknown[] | undefined)
          : await q.query(statement, params as unknown[] | undefined);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
    },
  });

  return {
    kind: 'postgres',
    query: wrap(pool).query,
    async transaction(fn) {
      const t0 = poolChannel.hasSubscribers ? performance.now() : 0;
      const client = await pool.connect();
      const t1 = t0 ? performance.now() : 0;
      try {
        await client.query('begin');
        const tx: Tx = { ...wrap(client), exec: async (sql) => void (await client.query(sql)) };
        const result = await fn(tx);
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => {});
        throw err;
      } finally {
        client.release();
        if (t0) poolChannel.publish({ waitMs: t1 - t0, runMs: performance.now() - t1 } satisfies PoolTiming);
      }
    },
    async exec(sql) {
      await pool.query(sql);
    },
    async listen(channel, onPayload, onReconnect) {
      const entry = { onPayload, onReconnect };
      let set = listeners.get(channel);
      const first = !set;
      if (!set) listeners.set(channel, (set = new Set()));
      set.add(entry);
      const client = listener ?? (await connectListener());
      if (first) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      return async () => {
        set.delete(entry);
        if (set.size === 0) {
          listeners.delete(channel);
          await listener?.query(`unlisten ${pg.escapeIdentifier(channel)}`).catch(() => {});
        }
      };
    },
    poolStats: () => ({ total: pool.totalCount, inUse: pool.totalCount - pool.idleCount, waiting: pool.waitingCount, max }),
    async close() {
      if (closed) return;
      closed = true;
      await listener?.end().catch(() => {});
      await pool.end();
    },
  };
}
