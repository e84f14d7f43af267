// What PostgreSQL did for a run, per sign-in: statements (pg_stat_statements, when preloaded), WAL
// bytes (pg_current_wal_lsn), WAL flushes (pg_stat_wal), commits, and rows written per table
// (pg_stat_user_tables deltas).
import pg from 'pg';

interface TableCounts {
  ins: number;
  upd: number;
  hot: number;
  del: number;
}

interface Snapshot {
  lsn: string;
  commits: number;
  walSync: number;
  walSyncMs: number;
  walWrite: number;
  walFpi: number;
  tables: Map<string, TableCounts>;
}

export interface StatementCost {
  toplevel: boolean;
  query: string;
  calls: number;
  ms: number;
  walBytes: number;
  rows: number;
}

export interface RunStats {
  perSignIn: {
    walBytes: number;
    commits: number;
    walSyncs: number;
    walSyncMs: number;
    walFpi: number;
    /** Top-level statements the clients sent (begin/commit included); undefined without pg_stat_statements. */
    statements?: number;
    /** Statements run inside functions and triggers. */
    nestedStatements?: number;
    rowsWritten: number;
  };
  /** Rows inserted/updated (HOT of them)/deleted per sign-in, per table. */
  tables: Array<{ table: string } & TableCounts>;
  /** Per sign-in, costliest first. */
  statements?: StatementCost[];
}

async function query<T extends object>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

async function snapshot(url: string): Promise<Snapshot> {
  const [head] = await query<{ lsn: string; commits: string; wal_sync: string; wal_sync_time: number; wal_write: string; wal_fpi: string }>(
    url,
    `select pg_current_wal_lsn()::text as lsn, d.xact_commit as commits, w.wal_sync, w.wal_sync_time, w.wal_write, w.wal_fpi
       from pg_stat_database d, pg_stat_wal w where d.datname = current_database()`,
  );
  const rows = await query<{ t: string; ins: string; upd: string; hot: string; del: string }>(
    url,
    `select schemaname || '.' || relname as t, n_tup_ins as ins, n_tup_upd as upd, n_tup_hot_upd as hot, n_tup_del as del
       from pg_stat_user_tables`,
  );
  return {
    lsn: head!.lsn,
    commits: Number(head!.commits),
    walSync: Number(head!.wal_sync),
    walSyncMs: Number(head!.wal_sync_time),
    walWrite: Number(head!.wal_write),
    walFpi: Number(head!.wal_fpi),
    tables: new Map(rows.map((r) => [r.t, { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot), del: Number(r.del) }])),
  };
}

const lsnBytes = (lsn: string) => {
  const [hi, lo] = lsn.split('/');
  return Number.parseInt(hi!, 16) * 2 ** 32 + Number.parseInt(lo!, 16);
};

export interface StatsWatch {
  /** Waits until the backends have flushed their table counters (they do so within ~10 s of going idle). */
  finish(signIns: number, settle: (tables: Map<string, TableCounts>, base: Map<string, TableCounts>) => boolean): Promise<RunStats>;
}

/** Whether pg_stat_statements is collecting on this server (it must be in shared_preload_libraries). */
export async function hasStatements(url: string): Promise<boolean> {
  const [row] = await query<{ on: boolean }>(url, `select current_setting('shared_preload_libraries') ~ 'pg_stat_statements' as on`);
  if (!row?.on) return false;
  await query(url, 'create extension if not exists pg_stat_statements');
  return true;
}

/** Starts watching a run on the database at `url` (a scratch database: only the run writes there). */
export async function watchRun(url: string, statements: boolean): Promise<StatsWatch> {
  if (statements) await query(url, 'create extension if not exists pg_stat_statements; select pg_stat_statements_reset()');
  const before = await snapshot(url);
  return {
    async finish(n, settle) {
      const walEnd = (await query<{ lsn: string }>(url, 'select pg_current_wal_lsn()::text as lsn'))[0]!.lsn;
      const stmts = statements
        ? await query<{ toplevel: boolean; query: string; calls: string; ms: number; wal_bytes: string; rows: string }>(
            url,
            `select toplevel, query, calls, total_exec_time as ms, wal_bytes, rows
               from pg_stat_statements s join pg_database d on d.oid = s.dbid
              where d.datname = current_database() and query !~* 'pg_stat_statements|pg_stat_user_tables|pg_current_wal_lsn'`,
          )
        : undefined;
      let after = await snapshot(url);
      for (const deadline = Date.now() + 15_000; !settle(after.tables, before.tables) && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 250));
        after = await snapshot(url);
      }
      const per = (x: number) => x / Math.max(1, n);
      const tables = [...after.tables]
        .map(([table, a]) => {
          const b = before.tables.get(table) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
          return { table, ins: per(a.ins - b.ins), upd: per(a.upd - b.upd), hot: per(a.hot - b.hot), del: per(a.del - b.del) };
        })
        .filter((t) => t.ins + t.upd + t.del > 0.001)
        .sort((x, y) => y.ins + y.upd + y.del - (x.ins + x.upd + x.del));
      const statementCosts = stmts
        ?.map((s) => ({ toplevel: s.toplevel, query: s.query.replace(/\s+/g, ' ').trim(), calls: per(Number(s.calls)), ms: per(s.ms), walBytes: per(Number(s.wal_bytes)), rows: per(Number(s.rows)) }))
        .sort((x, y) => y.ms - x.ms);
      return {
        perSignIn: {
          walBytes: per(lsnBytes(walEnd) - lsnBytes(before.lsn)),
          commits: per(after.commits - before.commits),
          walSyncs: per(after.walSync - before.walSync),
          walSyncMs: per(after.walSyncMs - before.walSyncMs),
          walFpi: per(after.walFpi - before.walFpi),
          ...(statementCosts
            ? {
                statements: statementCosts.filter((s) => s.toplevel).reduce((a, s) => a + s.calls, 0),
                nestedStatements: statementCosts.filter((s) => !s.toplevel).reduce((a, s) => a + s.calls, 0),
              }
            : {}),
          rowsWritten: tables.reduce((a, t) => a + t.ins + t.upd + t.del, 0),
        },
        tables,
        ...(statementCosts ? { statements: statementCosts } : {}),
      };
    },
  };
}
