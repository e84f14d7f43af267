// Reads of one's own profile through /rest/v1 (HTTP, token check, role switch, RLS) against the same
// query straight through `pg` with `set local role` and the claims, in one run, at concurrency 64.
// The server runs in its own process on a fresh PostgreSQL database at 127.0.0.1; every phase is
// bounded in requests and seconds. Prints req/s, p50, p99 and the ratio (target: REST >= 0.5 x direct).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createScratchDatabase } from '@hallpass/db/testing';
import { loadConfig } from '../packages/server/src/config/config.ts';
import { createDeps, runMigrations } from '../packages/server/src/server.ts';
import { signApiKey } from '../packages/server/src/sessions/api-keys.ts';
import { seedUsers, type SeededUser } from '../packages/server/test/seed.ts';

// BENCH_DATABASE_URL: the server to create the fresh database on; BENCH_CONCURRENCY: other than 64;
// BENCH_PROFILE=1: write a CPU profile of the server process to /tmp/prof-rest.
const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const users = 64;
const poolSize = 20;
const maxRequests = 20_000;
const rounds = 3;
const roundSeconds = 2.5;
const warmupSeconds = 1.5;

interface Result {
  name: string;
  count: number;
  seconds: number;
  latencies: number[];
  /** CPU milliseconds the phase cost the bench process and the server process. */
  benchCpuMs: number;
  serverCpuMs: number;
}

/** CPU time (user + system) of a process in ms, from /proc on Linux; 0 where there is none. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Runs `op` from `concurrency` workers until the request or time bound; latencies in ms. */
async function load(name: string, op: (worker: number) => Promise<void>, seconds: number, limit: number, serverPid: number): Promise<Result> {
  const latencies: number[] = [];
  const bench0 = cpuMs(process.pid);
  const server0 = cpuMs(serverPid);
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (issued < limit && performance.now() < deadline) {
        issued++;
        const t0 = performance.now();
        await op(w);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return {
    name,
    count: latencies.length,
    seconds: (performance.now() - start) / 1000,
    latencies,
    benchCpuMs: cpuMs(process.pid) - bench0,
    serverCpuMs: cpuMs(serverPid) - server0,
  };
}

function merge(name: string, parts: Result[]): Result {
  return {
    name,
    count: parts.reduce((n, p) => n + p.count, 0),
    seconds: parts.reduce((n, p) => n + p.seconds, 0),
    latencies: parts.flatMap((p) => p.latencies),
    benchCpuMs: parts.reduce((n, p) => n + p.benchCpuMs, 0),
    serverCpuMs: parts.reduce((n, p) => n + p.serverCpuMs, 0),
  };
}

function report(r: Result) {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
  const rps = r.count / r.seconds;
  console.log(`${r.name.padEnd(34)} ${rps.toFixed(0).padStart(7)} req/s   p50 ${pct(50).toFixed(2)} ms   p99 ${pct(99).toFixed(2)} ms   (${r.count} reads)`);
  const per = (ms: number) => (ms / Math.max(1, r.count)).toFixed(3);
  console.log(`${''.padEnd(34)} CPU per read: bench process ${per(r.benchCpuMs)} ms, server process ${per(r.serverCpuMs)} ms`);
  return rps;
}

async function main() {
  const database = await createScratchDatabase(adminUrl, 'hallpass_bench');
  const url = new URL(database.url);
  const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-bench-'));
  const port = await freePort();
  const env = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: url.toString(),
    DATABASE_POOL_SIZE: String(poolSize),
    HALLPASS_DATA_DIR: dataDir,
    DEV_MAILBOX: 'true',
    LOG_LEVEL: 'silent',
  };
  const config = loadConfig(env);
  const deps = await createDeps(config, { print: () => {} });
  let child: ReturnType<typeof spawn> | undefined;
  const pool = new pg.Pool({ connectionString: url.toString(), max: poolSize });
  // An idle connection closed under us (another process on a shared server terminating backends)
  // must not crash the run; the pool replaces it.
  pool.on('error', () => {});
  try {
    await runMigrations(deps.db);
    const seeded: SeededUser[] = await seedUsers(
      deps,
      deps.db,
      Array.from({ length: users }, (_, i) => ({ email: `bench${i}@bench.test`, tenantId: '00000000-0000-0000-0000-000000000000' })),
    );
    const anonKey = await signApiKey(deps, 'anon');

    const main = fileURLToPath(new URL('../packages/cli/src/main.ts', import.meta.url));
    child = spawn(process.execPath, [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof-rest'] : []), '--import', 'tsx', main, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 200) throw new Error('server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }

    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const restOnce = (w: number) =>
      new Promise<void>((resolve, reject) => {
        const u = seeded[w % seeded.length]!;
        const req = http.get(
          {
            agent,
            host: '127.0.0.1',
            port,
            path: `/rest/v1/profiles?select=*&email=eq.${encodeURIComponent(u.email)}`,
            headers: { apikey: anonKey, authorization: `Bearer ${u.token}`, accept: 'application/vnd.pgrst.object+json' },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => (res.statusCode === 200 && body.includes(u.id) ? resolve() : reject(new Error(`REST ${res.statusCode}: ${body}`))));
          },
        );
        req.on('error', reject);
      });
    // A keep-alive socket the server closed as idle just as it was reused: send again, once.
    const restRead = (w: number) =>
      restOnce(w).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') throw err;
        return restOnce(w);
      });

    const claims = seeded.map((u) => JSON.stringify(u.claims));
    const directRead = async (w: number) => {
      const u = seeded[w % seeded.length]!;
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [claims[w % claims.length]]);
        const { rows } = await client.query('select * from public.profiles where email = $1', [u.email]);
        await client.query('commit');
        if (rows.length !== 1) throw new Error('direct read saw no row');
      } finally {
        client.release();
      }
    };

    console.log(
      `concurrency ${concurrency}, ${users} users, pool ${poolSize} on each side; ${rounds} alternating rounds of up to ${roundSeconds} s / ${maxRequests} reads per side`,
    );
    // The figures depend on what else the machine runs: say so next to them.
    console.log(`machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const serverPid = child.pid!;
    await load('warm-up', restRead, warmupSeconds, 5000, serverPid);
    await load('warm-up', directRead, warmupSeconds, 5000, serverPid);
    // Alternating rounds, so a busy neighbour on the machine weighs on both sides alike.
    const directParts: Result[] = [];
    const restParts: Result[] = [];
    for (let i = 0; i < rounds; i++) {
      directParts.push(await load('direct', directRead, roundSeconds, maxRequests, serverPid));
      restParts.push(await load('rest', restRead, roundSeconds, maxRequests, serverPid));
    }
    const direct = report(merge('direct pg (set local role + claims)', directParts));
    const rest = report(merge('/rest/v1 (supabase-js request)', restParts));
    const ratio = rest / direct;
    console.log(`ratio REST / direct: ${ratio.toFixed(2)} (target >= 0.5) ${ratio >= 0.5 ? 'OK' : 'BELOW TARGET'}`);
    agent.destroy();
  } finally {
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    await pool.end();
    await deps.db.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
