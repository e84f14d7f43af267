// A throwaway PostgreSQL 15 cluster for the bench: its own data directory and port, with
// pg_stat_statements preloaded (the shared server on 5432 does not preload it, and must not be
// restarted), WAL and I/O timing on. Its processes are only the bench's, so its CPU is the bench's.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './lib.ts';

const bin = process.env.BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface OwnCluster {
  adminUrl: string;
  /** The postmaster's pid: the cluster's CPU is its process tree. */
  postmasterPid: number;
  stop(): Promise<void>;
}

/** initdb refuses to run as root: run the cluster as the `postgres` OS user then. */
function run(cmd: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { stdio: 'pipe' });
  else execFileSync(join(bin, cmd), args, { stdio: 'pipe' });
}

export async function startOwnCluster(): Promise<OwnCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'hallpass-bench-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const pgUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const pgGid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, pgUid, pgGid);
  }
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  // The server's defaults (as on the shared server: fsync and synchronous_commit on), plus the
  // statistics the bench reads.
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `max_connections = 200`,
      `shared_preload_libraries = 'pg_stat_statements'`,
      `pg_stat_statements.track = all`,
      `pg_stat_statements.max = 2000`,
      `track_wal_io_timing = on`,
      `track_io_timing = on`,
      `track_functions = 'all'`,
      '',
    ].join('\n'),
  );
  run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  const postmasterPid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    postmasterPid,
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
