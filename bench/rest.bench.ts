// Requests through /rest/v1 (HTTP, token check, role switch, RLS) against the same query straight
// through `pg` with `set local role` and the claims, in one run, at concurrency 64: one's own profile,
// an embedded read (one's redemptions with their offers, from the holiday-sale example's tables) and
// an rpc call (redeem_offer). The server runs in its own process on a fresh PostgreSQL database at
// 127.0.0.1; every phase is bounded in requests and seconds. Prints req/s, p50, p99 and the ratio
// (target: REST >= 0.8 x direct), and what hallpass.set_request_claims costs the direct side.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createScratchDatabase } from '@hallpass/db/testing';
import { loadConfig } from '../packages/server/src/config/config.ts';
import { createDeps, runMigrations } from '../packages/server/src/server.ts';
import { signApiKey } from '../packages/server/src/sessions/api-keys.ts';
import { seedUsers, type SeededUser } from '../packages/server/test/seed.ts';
import { freePort } from '../packages/server/test/server-process.ts';
import { leanHttp } from './lean-http.ts';

// BENCH_DATABASE_URL: the server to create the fresh database on; BENCH_CONCURRENCY: other than 64;
// BENCH_PROFILE=1: write a CPU profile of the server process to /tmp/prof-rest; BENCH_REST_SCENARIO:
// run only the scenarios whose name contains it (e.g. "own profile").
const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const users = 64;
const poolSize = 20;
const maxRequests = 20_000;
const rounds = 3;
const roundSeconds = 2.5;
const warmupSeconds = 1.5;
/** REST throughput as a share of the same query through pg (issue 12). */
const target = 0.8;
const plainSwitch = `select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`;
const fullSwitch = `select hallpass.set_request_claims('authenticated', $1)`;

interface Result {
  name: string;
  count: number;
  seconds: number;
  latencies: number[];
  /** CPU milliseconds the phase cost the bench process and the server process. */
  benchCpuMs: number;
  serverCpuMs: number;
  /** CPU ms of the PostgreSQL backends connected to the bench's database (both sides' pools). */
  pgCpuMs: number;
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


/** The PostgreSQL backends a phase runs on: every connection to the bench's database, by pid. */
type BackendPids = () => Promise<number[]>;

/** CPU ms of each backend, from /proc (PostgreSQL on this machine: the bench only runs on 127.0.0.1). */
function backendsCpu(pids: number[]): Map<number, number> {
  return new Map(pids.map((pid) => [pid, cpuMs(pid)]));
}

/** Runs `op` from `concurrency` workers until the request or time bound; latencies in ms. */
async function load(name: string, op: (worker: number) => Promise<void>, seconds: number, limit: number, serverPid: number, backends: BackendPids): Promise<Result> {
  const latencies: number[] = [];
  const pg0 = backendsCpu(await backends());
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
    // A backend that opened during the phase counts from zero (its start-up is part of the phase).
    pgCpuMs: [...backendsCpu(await backends())].reduce((sum, [pid, ms]) => sum + ms - (pg0.get(pid) ?? 0), 0),
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
    pgCpuMs: parts.reduce((n, p) => n + p.pgCpuMs, 0),
  };
}

function report(r: Result) {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
  const rps = r.count / r.seconds;
  console.log(`${r.name.padEnd(34)} ${rps.toFixed(0).padStart(7)} req/s   p50 ${pct(50).toFixed(2)} ms   p99 ${pct(99).toFixed(2)} ms   (${r.count} reads)`);
  const per = (ms: number) => (ms / Math.max(1, r.count)).toFixed(3);
  console.log(`${''.padEnd(34)} CPU per read: bench process ${per(r.benchCpuMs)} ms, server process ${per(r.serverCpuMs)} ms, PostgreSQL ${per(r.pgCpuMs)} ms`);
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
    APP_MIGRATIONS_DIR: fileURLToPath(new URL('../examples/holiday-sale/migrations', import.meta.url)),
  };
  const config = loadConfig(env);
  const deps = await createDeps(config, { print: () => {} });
  let child: ReturnType<typeof spawn> | undefined;
  const pool = new pg.Pool({ connectionString: url.toString(), max: poolSize });
  // An idle connection closed under us (another process on a shared server terminating backends)
  // must not crash the run; the pool replaces it.
  pool.on('error', () => {});
  try {
    await runMigrations(deps.db, config.appMigrationsDir);
    const seeded: SeededUser[] = await seedUsers(
      deps,
      deps.db,
      Array.from({ length: users }, (_, i) => ({ email: `bench${i}@bench.test`, tenantId: '00000000-0000-0000-0000-000000000000' })),
    );
    const anonKey = await signApiKey(deps, 'anon');
    // Every user has redeemed two offers: the embedded read returns both with their offer.
    const { rows: offerRows } = await deps.db.query<{ id: number }>('select id from public.offers order by id limit 2');
    const offerIds = offerRows.map((o) => o.id);
    await deps.db.query(
      `insert into public.redemptions (tenant_id, email, offer_id) select u.t, u.e, o from unnest($1::uuid[], $2::text[]) u(t, e), unnest($3::bigint[]) o`,
      [seeded.map((u) => u.tenantId), seeded.map((u) => u.email), offerIds],
    );

    const main = fileURLToPath(new URL('../packages/cli/src/main.ts', import.meta.url));
    child = spawn(process.execPath, [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof-rest'] : []), '--import', 'tsx', main, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 200) throw new Error('server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }

    // The load generator stands in for browsers on other machines; its CPU is not the data API's.
    // BENCH_HTTP_CLIENT=node uses node:http's client instead of the lean one (bench/lean-http.ts).
    const nodeClient = process.env.BENCH_HTTP_CLIENT === 'node';
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const lean = leanHttp(port, concurrency);
    const viaNode = (method: string, path: string, headers: Record<string, string>, body: string | null) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          { agent, method, host: '127.0.0.1', port, path, headers: body ? { ...headers, 'content-length': String(Buffer.byteLength(body)) } : headers },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        req.end(body ?? undefined);
      });
    /** One REST request from worker `w`; `check` decides whether the answer is the right one. */
    const restOnce = async (w: number, method: string, path: string, u: SeededUser, body: string | null, accept: string, check: (status: number, body: string) => boolean) => {
      const headers: Record<string, string> = { apikey: anonKey, authorization: `Bearer ${u.token}`, accept, ...(body ? { 'content-type': 'application/json' } : {}) };
      const answer = nodeClient ? await viaNode(method, path, headers, body) : await lean.request(w, method, path, headers, body);
      if (!check(answer.status, answer.body)) throw new Error(`REST ${method} ${path} ${answer.status}: ${answer.body}`);
    };
    /** A REST answer's body, whatever its status (for the same-answer check). */
    const restBody = async (w: number, method: string, path: string, u: SeededUser, body: string | null, accept: string) => {
      let text = '';
      await restOnce(w, method, path, u, body, accept, (_, t) => ((text = t), true));
      return text;
    };
    // A keep-alive socket the server closed as idle just as it was reused: send again, once.
    const rest = (...args: Parameters<typeof restOnce>) =>
      restOnce(...args).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') throw err;
        return restOnce(...args);
      });

    const claims = seeded.map((u) => JSON.stringify(u.claims));
    /**
     * The same statement straight through pg: begin, role and claims (as `switchSql`), the query, commit.
     * The query makes the same JSON text the data API answers with (Postgres builds it, as the
     * server's statement does), and `check` reads that text.
     */
    const directOnce = async (w: number, sql: string, params: unknown[], switchSql = plainSwitch): Promise<string | null> => {
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query(switchSql, [claims[w % claims.length]]);
        const { rows } = await client.query<{ body: string | null }>(sql, params);
        await client.query('commit');
        return rows.length === 1 ? rows[0]!.body : null;
      } finally {
        client.release();
      }
    };
    const direct = async (w: number, sql: string, params: unknown[], check: (body: string) => boolean, switchSql = plainSwitch) => {
      const body = await directOnce(w, sql, params, switchSql);
      if (body === null || !check(body)) throw new Error(`direct read got ${body}`);
    };

    const user = (w: number) => seeded[w % seeded.length]!;
    const profileSql = 'select to_json(p)::text as body from public.profiles p where p.email = $1';
    const redemptionsSql = `select coalesce(json_agg(x), '[]')::text as body from (
        select r.offer_id, r.redeemed_at, (select to_json(o) from (select o.title, o.percent_off from public.offers o where o.id = r.offer_id) o) as offers
          from public.redemptions r order by r.offer_id) x`;
    const redeemSql = 'select to_json(r)::text as body from public.redeem_offer($1) r';
    const allScenarios: { name: string; rest: (w: number) => Promise<void>; direct: (w: number) => Promise<void>; claimsDirect?: (w: number) => Promise<void>; same: (w: number) => Promise<[string, string | null]> }[] = [
      {
        name: 'own profile read',
        rest: (w) =>
          rest(w, 'GET', `/rest/v1/profiles?select=*&email=eq.${encodeURIComponent(user(w).email)}`, user(w), null, 'application/vnd.pgrst.object+json', (st, b) => st === 200 && b.includes(user(w).id)),
        direct: (w) => direct(w, profileSql, [user(w).email], (b) => b.includes(user(w).id)),
        // The server switches through hallpass.set_request_claims (0014: legacy claim settings too).
        claimsDirect: (w) => direct(w, profileSql, [user(w).email], (b) => b.includes(user(w).id), fullSwitch),
        same: async (w) => [await restBody(w, 'GET', `/rest/v1/profiles?select=*&email=eq.${encodeURIComponent(user(w).email)}`, user(w), null, 'application/vnd.pgrst.object+json'), await directOnce(w, profileSql, [user(w).email])],
      },
      {
        name: 'embedded: own redemptions with their offers',
        rest: (w) =>
          rest(w, 'GET', '/rest/v1/redemptions?select=offer_id,redeemed_at,offers(title,percent_off)&order=offer_id', user(w), null, 'application/json', (st, b) => st === 200 && b.split('"title"').length === 3),
        direct: (w) => direct(w, redemptionsSql, [], (b) => b.split('"title"').length === 3),
        same: async (w) => [await restBody(w, 'GET', '/rest/v1/redemptions?select=offer_id,redeemed_at,offers(title,percent_off)&order=offer_id', user(w), null, 'application/json'), await directOnce(w, redemptionsSql, [])],
      },
      {
        name: 'rpc: redeem_offer (already redeemed)',
        rest: (w) => rest(w, 'POST', '/rest/v1/rpc/redeem_offer', user(w), JSON.stringify({ offer_id: offerIds[0] }), 'application/json', (st, b) => st === 200 && b.includes('"offer_id"')),
        direct: (w) => direct(w, redeemSql, [offerIds[0]], (b) => b.includes('"offer_id"')),
        same: async (w) => [await restBody(w, 'POST', '/rest/v1/rpc/redeem_offer', user(w), JSON.stringify({ offer_id: offerIds[0] }), 'application/json'), await directOnce(w, redeemSql, [offerIds[0]])],
      },
    ];
    const scenarios = allScenarios.filter((sc) => sc.name.includes(process.env.BENCH_REST_SCENARIO ?? ''));

    // Both sides must answer with the same bytes, for every user, before anything is timed.
    for (const sc of scenarios) {
      for (let w = 0; w < users; w++) {
        const [viaRest, viaPg] = await sc.same(w);
        if (viaRest !== viaPg) throw new Error(`${sc.name}: REST and direct answers differ for user ${w}:\n${viaRest}\n${viaPg}`);
      }
    }

    console.log(
      `concurrency ${concurrency}, ${users} users, pool ${poolSize} on each side; ${rounds} alternating rounds of up to ${roundSeconds} s / ${maxRequests} requests per side`,
    );
    // The figures depend on what else the machine runs: say so next to them.
    console.log(`machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const serverPid = child.pid!;
    // Another connection to the scratch database is ours too; this one's own query is a blip.
    const backends: BackendPids = async () =>
      (await deps.db.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()')).rows.map((r) => r.pid);
    for (const sc of scenarios) {
      console.log(`\n-- ${sc.name}`);
      await load('warm-up', sc.rest, warmupSeconds, 5000, serverPid, backends);
      await load('warm-up', sc.direct, warmupSeconds, 5000, serverPid, backends);
      // Alternating rounds, so a busy neighbour on the machine weighs on both sides alike.
      const directParts: Result[] = [];
      const claimsParts: Result[] = [];
      const restParts: Result[] = [];
      for (let i = 0; i < rounds; i++) {
        directParts.push(await load('direct', sc.direct, roundSeconds, maxRequests, serverPid, backends));
        if (sc.claimsDirect) claimsParts.push(await load('direct', sc.claimsDirect, roundSeconds, maxRequests, serverPid, backends));
        restParts.push(await load('rest', sc.rest, roundSeconds, maxRequests, serverPid, backends));
      }
      const directAll = merge('direct pg (set local role + claims)', directParts);
      const restAll = merge('/rest/v1 (supabase-js request)', restParts);
      const d = report(directAll);
      let dc: number | undefined;
      if (claimsParts.length) {
        dc = report(merge('direct pg (hallpass.set_request_claims)', claimsParts));
        console.log(`set_request_claims costs ${(((d - dc) / d) * 100).toFixed(0)} % of direct throughput`);
      }
      const r = report(restAll);
      // For reading the gap: the data API sets the legacy claim names too (0014), which the plain switch does not.
      if (dc !== undefined) console.log(`ratio REST / direct with the same switch (set_request_claims): ${(r / dc).toFixed(2)}`);
      const ratio = r / d;
      console.log(`ratio REST / direct: ${ratio.toFixed(2)} (target >= ${target}) ${ratio >= target ? 'OK' : 'BELOW TARGET'}`);
      // The same comparison by CPU, with the load generator left out: what one read costs the app
      // and the database on each side (direct: the bench process, whose pg client is the app; REST:
      // the server). It holds on any machine; the throughput ratio above also carries the load
      // generator's share of these two cores.
      const perRead = (x: Result, app: number) => (app + x.pgCpuMs) / Math.max(1, x.count);
      const directCost = perRead(directAll, directAll.benchCpuMs);
      const restCost = perRead(restAll, restAll.serverCpuMs);
      console.log(`CPU per read (app + PostgreSQL): direct ${directCost.toFixed(3)} ms, REST ${restCost.toFixed(3)} ms; ratio ${(directCost / restCost).toFixed(2)}`);
    }
    agent.destroy();
    lean.close();
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
