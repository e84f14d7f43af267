// `npm run bench:realtime`: one Hallpass instance (a child process) on PostgreSQL at 127.0.0.1,
// N WebSocket clients each subscribed to its own profile row (RLS-checked), and a writer updating
// random profiles at fixed rates. Prints connected sockets, server RSS, delivered events/s and
// commit->receipt latency percentiles. Bounded in sockets, rate and time; talks to 127.0.0.1 only.
//
// BENCH_SOCKETS (default 10000), BENCH_RATES (default 500,2000), BENCH_SECONDS per rate (default
// 10), BENCH_SERVER_NODE_ARGS (e.g. --cpu-prof), BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; a fresh database
// is created in it and dropped at the end).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import WebSocket from 'ws';
import { loadConfig } from '../packages/server/src/config/config.ts';
import { createDeps } from '../packages/server/src/server.ts';
import { signAccessToken } from '../packages/server/src/sessions/sessions.service.ts';

const sockets = Math.min(Number(process.env.BENCH_SOCKETS ?? 10_000), 15_000);
const rates = (process.env.BENCH_RATES ?? '500,2000').split(',').map((r) => Math.min(Number(r), 5000));
const seconds = Math.min(Number(process.env.BENCH_SECONDS ?? 10), 60);
const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const deadline = setTimeout(() => {
  console.error('bench: over its 6-minute budget; stopping');
  void cleanUp().then(() => process.exit(2));
}, 6 * 60_000);
deadline.unref();

const dbName = `hallpass_bench_${randomBytes(4).toString('hex')}`;
const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-bench-'));
const env = { NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: dbUrl, HALLPASS_DATA_DIR: dataDir, LOG_LEVEL: 'warn', DEV_MAILBOX: 'true', DATABASE_POOL_SIZE: '10', REALTIME_MAX_SOCKETS_PER_IP: '100000', REALTIME_JOINS_PER_SECOND_PER_IP: '100000' };
let server: ChildProcess | undefined;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(sql);
  await c.end();
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  await admin(`create database ${dbName}`);
  const config = loadConfig(env);
  // Migrates and creates the signing keys in dataDir; the server child reads the same ones.
  const deps = await createDeps(config);
  const { runMigrations } = await import('../packages/server/src/server.ts');
  await runMigrations(deps.db);

  console.log(`creating ${sockets} users with sessions...`);
  const { rows: users } = await deps.db.query<{ id: string; email: string; tenant_id: string; session_id: string; amr: [] }>(
    `with p as (
       insert into public.profiles (email) select 'bench' || g || '@example.com' from generate_series(1, $1) g
       returning id, email, tenant_id),
     s as (
       insert into hallpass.sessions (profile_id, tenant_id, amr, expires_at)
       select id, tenant_id, '[]', now() + interval '1 day' from p returning id, profile_id, amr)
     select p.id, p.email, p.tenant_id, s.id as session_id, s.amr from p join s on s.profile_id = p.id`,
    [sockets],
  );
  const tokens = await Promise.all(users.map((u) => signAccessToken(deps, u, { id: u.session_id, amr: u.amr }).then((t) => t.token)));
  await deps.db.close();

  // The server in its own process, so its RSS is its own. ulimit raised for 10k+ sockets.
  const mainTs = fileURLToPath(new URL('../packages/server/src/main.ts', import.meta.url));
  server = spawn('sh', ['-c', `ulimit -n 20000 2>/dev/null; exec "${process.execPath}" ${process.env.BENCH_SERVER_NODE_ARGS ?? ''} --import tsx "${mainTs}" serve`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /bound to (http:\/\/\S+?)\)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server!.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const wsUrl = `${url.replace('http', 'ws')}/realtime/v1/websocket?vsn=2.0.0`;
  const pid = server.pid!;
  console.log(`server pid ${pid} at ${url}; RSS idle ${rssMb(pid)} MB`);

  // Clients: raw ws (supabase-js would make the load generator the bottleneck).
  const commitAt = new Map<number, number>();
  const seen = new Set<number>();
  const latencies: number[] = [];
  let received = 0;
  let joined = 0;
  const clients: WebSocket[] = [];
  const t0 = Date.now();
  const connectOne = (i: number) =>
    new Promise<void>((resolve) => {
      const u = users[i]!;
      const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
      clients.push(ws);
      ws.on('open', () => {
        ws.send(JSON.stringify(['1', '1', `realtime:user:${u.id}`, 'phx_join', {
          config: { private: true, postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${u.id}` }] },
          access_token: tokens[i],
        }]));
      });
      ws.on('message', (data) => {
        const now = performance.timeOrigin + performance.now();
        const [, ref, , event, payload] = JSON.parse(data.toString()) as [string, string, string, string, any];
        if (event === 'phx_reply' && ref === '1') {
          if (payload.status === 'ok') joined++;
          resolve();
        } else if (event === 'postgres_changes') {
          received++;
          const at = commitAt.get(payload.data.record.metadata.seq);
          if (at !== undefined) latencies.push(now - at);
          seen.add(payload.data.record.metadata.seq);
        }
      });
      ws.on('error', () => resolve());
      ws.on('close', () => resolve());
    });
  const parallel = 200;
  for (let i = 0; i < users.length; i += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, users.length - i) }, (_, k) => connectOne(i + k)));
  }
  const heartbeat = setInterval(() => {
    for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(JSON.stringify([null, 'hb', 'phoenix', 'heartbeat', {}]));
  }, 20_000);
  const open = () => clients.filter((ws) => ws.readyState === ws.OPEN).length;
  console.log(`connected ${open()} sockets, ${joined} joined, in ${((Date.now() - t0) / 1000).toFixed(1)} s; server RSS ${rssMb(pid)} MB`);

  // Four connections writing in parallel (so commits interleave and land out of id order), each on
  // its own quarter of the rows so their batches never deadlock on each other's row locks.
  const writers = 4;
  const writer = new pg.Pool({ connectionString: dbUrl, max: writers });
  let turn = 0;
  let seq = 0;
  const results: string[] = [];
  for (const rate of rates) {
    latencies.length = 0;
    received = 0;
    commitAt.clear();
    const tickMs = 10;
    let sent = 0;
    let maxRss = 0;
    const start = Date.now();
    const inflight = new Set<Promise<void>>();
    // One UPDATE per 10 ms tick, of as many distinct random rows as the rate asks for.
    while (Date.now() - start < seconds * 1000) {
      // Catch up to the rate by elapsed time, so a slow tick does not lower it.
      const n = Math.min(Math.floor((rate * (Date.now() - start)) / 1000) - sent, users.length);
      if (n > 0) {
        const part = turn++ % writers;
        const ids = new Set<string>();
        while (ids.size < Math.min(n, users.length / writers)) {
          const k = Math.floor(Math.random() * (users.length / writers)) * writers + part;
          if (k < users.length) ids.add(users[k]!.id);
        }
        const first = seq + 1;
        seq += ids.size;
        const p = writer
          .query(
            `update public.profiles p set metadata = jsonb_build_object('seq', $2::int + v.n - 1)
               from unnest($1::uuid[]) with ordinality as v(id, n) where p.id = v.id`,
            [[...ids], first],
          )
          .then(() => {
            const at = performance.timeOrigin + performance.now();
            for (let k = first; k < first + ids.size; k++) commitAt.set(k, at);
          });
        sent += ids.size;
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      maxRss = Math.max(maxRss, rssMb(pid));
      await new Promise((r) => setTimeout(r, tickMs));
    }
    await Promise.all(inflight);
    const elapsed = (Date.now() - start) / 1000;
    // Let the tail arrive (bounded), then judge.
    const drainUntil = Date.now() + 5000;
    while (received < sent && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
    const missing = [...commitAt.keys()].filter((k) => !seen.has(k));
    if (missing.length) console.log(`not delivered within the 5 s drain: ${missing.length} events, e.g. seq ${missing.slice(0, 5).join(', ')}`);
    const sorted = [...latencies].sort((a, b) => a - b);
    const line =
      `rate ${rate}/s (load avg ${loadavg()[0]!.toFixed(1)}): sockets ${open()}, server RSS max ${maxRss} MB, written ${sent}, delivered ${received} ` +
      `(${(received / elapsed).toFixed(0)}/s), commit->receipt p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
      `p95 ${percentile(sorted, 95).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`;
    console.log(line);
    results.push(line);
  }
  clearInterval(heartbeat);
  for (const ws of clients) ws.terminate();
  await writer.end();
  console.log(`\nsummary (${sockets} sockets, ${seconds} s per rate, 2 cores, PostgreSQL on the same box):\n${results.join('\n')}`);
}

let cleaned = false;
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  server?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  server?.kill('SIGKILL');
  await admin(`drop database if exists ${dbName} with (force)`).catch((err: unknown) => console.error(err));
  rmSync(dataDir, { recursive: true, force: true });
}
// Interrupted (Ctrl-C, timeout): leave no server or database behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().then(() => process.exit(130)));
try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
process.exit();
