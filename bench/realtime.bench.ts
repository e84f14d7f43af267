// `npm run bench:realtime`: one Hallpass instance (a child process) on PostgreSQL at 127.0.0.1 and
// raw WebSocket clients in child processes (bench/realtime-clients.ts): the lean client of
// bench/lean-ws.ts, which takes less of the shared cores from the server and PostgreSQL than `ws`'s
// does (BENCH_WS_CLIENT=ws selects `ws`'s, to compare). Three parts, each on a fresh server process
// (BENCH_REALTIME_PARTS, default rows,fanout,sockets):
//
// - rows: BENCH_SOCKETS (10,000) sockets each subscribed to its own profile row (RLS-checked); a
//   writer updates random profiles at BENCH_RATES (500,2000) per second for BENCH_SECONDS (10) each.
// - fanout: BENCH_FANOUT_SOCKETS (10,000) signed-in sockets subscribed to the holiday-sale example's
//   `offers`, where a members-only policy (bench/fixtures/offers-members.sql) lets 9 in 10 users see
//   members offers. One members offer is updated; every member must receive it and no one else.
//   Then BENCH_FANOUT_RATE (10) such updates per second for BENCH_FANOUT_SECONDS (10).
// - sockets: BENCH_MAX_SOCKETS (25,000, capped by the open-files hard limit) joined sockets on one
//   instance, and its RSS.
//
// Prints commit->receipt percentiles, counts, RSS, the RLS decisions PostgreSQL made (calls of the
// per-table check function, from pg_stat_user_functions), and Supabase's published figures as the
// reference. Users are signed in through the profiles and sessions features' functions (no email
// round trip: this bench is about realtime). Bounded in sockets, rate and time; talks to 127.0.0.1
// only. BENCH_NODE_ARGS (e.g. --cpu-prof) goes to the server, BENCH_CLIENT_NODE_ARGS to the client
// processes (the load generator), BENCH_DATABASE_URL names the server
// (a fresh database is created in it and dropped at the end).
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../packages/server/src/config/config.ts';
import { defaultTenantId } from '../packages/server/src/passwordless/passwordless.service.ts';
import { upsertProfileOnLogin } from '../packages/server/src/profiles/profiles.repository.ts';
import { createDeps, runMigrations } from '../packages/server/src/server.ts';
import { startSession } from '../packages/server/src/sessions/sessions.service.ts';
import { cpuMs, fmt, percentile, pidsCpuMs, scratchDatabase, startServerProcess } from './lib.ts';

const parts = (process.env.BENCH_REALTIME_PARTS ?? 'rows,fanout,sockets').split(',');
const rowSockets = Math.min(Number(process.env.BENCH_SOCKETS ?? 10_000), 15_000);
const rates = (process.env.BENCH_RATES ?? '500,2000').split(',').map((r) => Math.min(Number(r), 5000));
const seconds = Math.min(Number(process.env.BENCH_SECONDS ?? 10), 60);
const fanoutSockets = Math.min(Number(process.env.BENCH_FANOUT_SOCKETS ?? 10_000), 15_000);
const fanoutRate = Math.min(Number(process.env.BENCH_FANOUT_RATE ?? 10), 50);
const fanoutSeconds = Math.min(Number(process.env.BENCH_FANOUT_SECONDS ?? 10), 60);
// The server holds one descriptor per socket plus its pool, files and listeners.
const fdHardLimit = Number(spawnSync('sh', ['-c', 'ulimit -Hn']).stdout.toString().trim()) || 20_000;
const maxSockets = Math.min(Number(process.env.BENCH_MAX_SOCKETS ?? 25_000), 25_000, fdHardLimit - 1000);
const socketsPerClientProcess = 5000;
// The tokens are minted here and verified by the server: one issuer for both.
const issuer = 'http://hallpass.bench';
const isMember = (i: number) => i % 10 !== 0;
const supabaseReference =
  "Supabase's published figures for RLS-checked postgres_changes: about 3,000-4,000 deliveries/s at p95 228-920 ms";

const deadline = setTimeout(() => {
  console.error('bench: over its 25-minute budget; stopping');
  void cleanUp().then(() => process.exit(2));
}, 25 * 60_000);
deadline.unref();

const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-bench-'));
let database: { url: string; drop(): Promise<void> } | undefined;
const running = new Set<{ stop(): Promise<void> }>();

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

interface User {
  id: string;
  token: string;
}

/** Profiles, sessions and access tokens minted through the features' own functions. */
async function signInUsers(count: number): Promise<User[]> {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: database!.url,
    HALLPASS_DATA_DIR: dataDir,
    DATABASE_POOL_SIZE: '8',
    ACCESS_TOKEN_TTL: '7200',
    HALLPASS_ISSUER: issuer,
  });
  const deps = await createDeps(config);
  try {
    await runMigrations(deps.db, fileURLToPath(new URL('../examples/holiday-sale/migrations', import.meta.url)));
    await deps.db.exec(readFileSync(new URL('./fixtures/offers-members.sql', import.meta.url), 'utf8'));
    const users: User[] = new Array(count);
    const chunk = 250;
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < count) {
          const from = next;
          next += chunk;
          await deps.db.transaction(async (tx) => {
            for (let i = from; i < Math.min(from + chunk, count); i++) {
              const { profile } = await upsertProfileOnLogin(tx, defaultTenantId, `bench${i}@example.com`, deps.clock.now());
              const issued = await startSession(deps, tx, { profile, method: 'otp', userAgent: 'bench', ip: '127.0.0.1' });
              users[i] = { id: profile.id, token: issued.accessToken };
            }
          });
        }
      }),
    );
    // Members of the bench's members-only rule: 9 in 10 users.
    await deps.db.query('insert into public.sale_members (profile_id) select unnest($1::uuid[])', [users.filter((_, i) => isMember(i)).map((u) => u.id)]);
    // Counts every call of the per-table visibility checker: PostgreSQL's own tally of RLS decisions.
    const dbName = new URL(database!.url).pathname.slice(1);
    await deps.db.query(`alter database ${dbName} set track_functions = 'pl'`);
    return users;
  } finally {
    await deps.db.close();
  }
}

async function startServer() {
  const server = await startServerProcess({
    NODE_ENV: 'test',
    DATABASE_URL: database!.url,
    HALLPASS_DATA_DIR: dataDir,
    APP_MIGRATIONS_DIR: fileURLToPath(new URL('../examples/holiday-sale/migrations', import.meta.url)),
    DEV_MAILBOX: 'true',
    DATABASE_POOL_SIZE: '10',
    HALLPASS_ISSUER: issuer,
    // Every bench client is 127.0.0.1: the per-address flood limits would refuse the 10,000 sockets.
    REALTIME_MAX_SOCKETS_PER_IP: '100000',
    REALTIME_JOINS_PER_SECOND_PER_IP: '100000',
  });
  running.add(server);
  const pid = server.child.pid!;
  return {
    pid,
    wsUrl: `${server.url.replace('http', 'ws')}/realtime/v1/websocket?vsn=2.0.0`,
    async stop() {
      running.delete(server);
      await server.stop();
    },
  };
}

interface Receipts {
  seq: Int32Array;
  /** The changed row's id as the frame carried it (-1 where the part reads none). */
  row: Int32Array;
  socket: Int32Array;
  at: Float64Array;
}

/**
 * Opens one socket per join, spread over child processes of `socketsPerClientProcess` each, each
 * process from its own loopback source address (so 25,000 connections do not run out of ephemeral
 * ports), and returns a handle that collects their receipts.
 */
async function openClients(
  wsUrl: string,
  joins: Array<{ topic: string; payload: Record<string, unknown> }>,
  markers: { seqMarker: string; rowMarker?: string },
) {
  const children: ChildProcess[] = [];
  const started = Date.now();
  const opened = await Promise.all(
    Array.from({ length: Math.ceil(joins.length / socketsPerClientProcess) }, async (_, k) => {
      const child = fork(fileURLToPath(new URL('./realtime-clients.ts', import.meta.url)), [], {
        execArgv: [...(process.env.BENCH_CLIENT_NODE_ARGS ? process.env.BENCH_CLIENT_NODE_ARGS.split(' ') : []), '--import', 'tsx'],
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      const share = joins.slice(k * socketsPerClientProcess, (k + 1) * socketsPerClientProcess);
      child.send({ type: 'open', url: wsUrl, localAddress: `127.0.0.${2 + k}`, joins: share, parallel: 100, ...markers });
      const [msg] = (await once(child, 'message')) as [{ open: number; joined: number; refused: Record<string, number> }];
      return msg;
    }),
  );
  const refused: Record<string, number> = {};
  for (const o of opened) for (const [reason, n] of Object.entries(o.refused)) refused[reason] = (refused[reason] ?? 0) + n;
  return {
    /** The client processes (the load generator), for their CPU. */
    pids: children.map((c) => c.pid!),
    open: opened.reduce((s, o) => s + o.open, 0),
    joined: opened.reduce((s, o) => s + o.joined, 0),
    refused,
    seconds: (Date.now() - started) / 1000,
    /** Every receipt since the last collect, with socket indexes made global. */
    async collect(): Promise<Receipts> {
      const got = await Promise.all(
        children.map(async (child, k) => {
          child.send({ type: 'collect' });
          const [r] = (await once(child, 'message')) as [Receipts];
          return { ...r, socket: r.socket.map((s) => s + k * socketsPerClientProcess) };
        }),
      );
      return got.reduce<Receipts>(concatReceipts, emptyReceipts());
    },
    close() {
      for (const child of children) child.send({ type: 'close' });
    },
  };
}

function emptyReceipts(): Receipts {
  return { seq: new Int32Array(), row: new Int32Array(), socket: new Int32Array(), at: new Float64Array() };
}

function concatReceipts(a: Receipts, b: Receipts): Receipts {
  const join = <T extends Int32Array | Float64Array>(x: T, y: T, make: (n: number) => T) => {
    const c = make(x.length + y.length);
    c.set(x);
    c.set(y, x.length);
    return c;
  };
  return {
    seq: join(a.seq, b.seq, (n) => new Int32Array(n)),
    row: join(a.row, b.row, (n) => new Int32Array(n)),
    socket: join(a.socket, b.socket, (n) => new Int32Array(n)),
    at: join(a.at, b.at, (n) => new Float64Array(n)),
  };
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls of the per-table RLS checkers, as PostgreSQL counted them (stats flush within ~1 s). */
async function rlsDecisions(writer: pg.Client, settle: boolean): Promise<number> {
  const read = async () => {
    await writer.query('select pg_stat_clear_snapshot()');
    const { rows } = await writer.query<{ n: string }>(
      `select coalesce(sum(calls), 0)::text as n from pg_stat_user_functions where schemaname = 'hallpass_realtime'`,
    );
    return Number(rows[0]!.n);
  };
  let last = await read();
  if (!settle) return last;
  // A backend flushes its counters when idle, but at most once a second and otherwise 10 s later
  // (or when it ends): wait until the count has stood still for 11 s.
  for (let stableSince = Date.now(); Date.now() - stableSince < 11_000; ) {
    await sleep(500);
    const n = await read();
    if (n !== last) stableSince = Date.now();
    last = n;
  }
  return last;
}

/**
 * CPU milliseconds of the server process, of the PostgreSQL backends serving the bench's database
 * (not the whole machine's PostgreSQL: other work shares it) and of the client processes. The pool
 * opens and closes backends, so they are sampled every 100 ms and each one's last reading counts.
 */
async function cpuMeter(serverPid: number, clientPids: readonly number[]) {
  const backends = new Map<number, number>();
  // Its own connection, so sampling never queues behind (or delays) the bench's updates.
  const writer = new pg.Client({ connectionString: database!.url });
  await writer.connect();
  let sampling: Promise<void> = Promise.resolve();
  const sampleNow = async () => {
    const { rows } = await writer.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    for (const { pid } of rows) backends.set(pid, Math.max(backends.get(pid) ?? 0, pidsCpuMs([pid])));
  };
  // One sample at a time on the meter's connection; the timer skips a tick while one runs.
  let busy = false;
  const sample = () => (sampling = sampling.then(sampleNow));
  const tick = () => {
    if (busy) return;
    busy = true;
    void sample()
      .catch(() => undefined)
      .finally(() => (busy = false));
  };
  let timer: NodeJS.Timeout | undefined;
  let server0 = 0;
  let pg0 = 0;
  let clients0 = 0;
  const sum = () => [...backends.values()].reduce((a, b) => a + b, 0);
  return {
    async start() {
      await sample();
      server0 = cpuMs(serverPid);
      clients0 = pidsCpuMs(clientPids);
      pg0 = sum();
      timer = setInterval(tick, 100);
    },
    /**
     * Server, PostgreSQL and client CPU ms since start, per update; called when the deliveries are in
     * (not after waiting for PostgreSQL's function counts, which would add seconds of heartbeats).
     * The answer takes the RLS decision count for PostgreSQL's µs per decision.
     */
    async stop(updates: number): Promise<(decisions: number) => string> {
      clearInterval(timer);
      await sample();
      const pgMs = sum() - pg0;
      const serverMs = cpuMs(serverPid) - server0;
      const clientsMs = pidsCpuMs(clientPids) - clients0;
      return (decisions) =>
        `CPU per update: server ${fmt(serverMs / updates, 0)} ms, PostgreSQL ${fmt(pgMs / updates, 0)} ms ` +
        `(${fmt((pgMs * 1000) / Math.max(1, decisions), 1)} µs a decision), load generator ${fmt(clientsMs / updates, 0)} ms`;
    },
    close: () => writer.end(),
  };
}

function stats(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return `p50 ${fmt(percentile(sorted, 50))} ms, p95 ${fmt(percentile(sorted, 95))} ms, p99 ${fmt(percentile(sorted, 99))} ms, max ${fmt(sorted.at(-1) ?? NaN)} ms`;
}

const summary: string[] = [];
function report(line: string): void {
  console.log(line);
  summary.push(line);
}

async function rowsPart(users: User[]): Promise<void> {
  const sockets = Math.min(rowSockets, users.length);
  const server = await startServer();
  console.log(`\n[rows] server pid ${server.pid}; RSS idle ${rssMb(server.pid)} MB; connecting ${sockets} sockets...`);
  const joins = users.slice(0, sockets).map((u) => ({
    topic: `realtime:user:${u.id}`,
    payload: {
      config: { private: true, postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${u.id}` }] },
      access_token: u.token,
    },
  }));
  const clients = await openClients(server.wsUrl, joins, { seqMarker: '"seq":' });
  console.log(`[rows] connected ${clients.open} sockets, ${clients.joined} joined, in ${fmt(clients.seconds)} s; server RSS ${rssMb(server.pid)} MB`);

  // Four connections writing in parallel (so commits interleave and land out of id order), each on
  // its own quarter of the rows so their batches never deadlock on each other's row locks.
  const writers = 4;
  const writer = new pg.Pool({ connectionString: database!.url, max: writers });
  let turn = 0;
  let seq = 0;
  for (const rate of rates) {
    const commitAt = new Map<number, number>();
    let sent = 0;
    let maxRss = 0;
    const start = Date.now();
    const inflight = new Set<Promise<void>>();
    // One UPDATE per 10 ms tick, of as many distinct random rows as the rate asks for.
    while (Date.now() - start < seconds * 1000) {
      // Catch up to the rate by elapsed time, so a slow tick does not lower it.
      const n = Math.min(Math.floor((rate * (Date.now() - start)) / 1000) - sent, sockets);
      if (n > 0) {
        const part = turn++ % writers;
        const ids = new Set<string>();
        while (ids.size < Math.min(n, sockets / writers)) {
          const k = Math.floor(Math.random() * (sockets / writers)) * writers + part;
          if (k < sockets) ids.add(users[k]!.id);
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
            const at = now();
            for (let k = first; k < first + ids.size; k++) commitAt.set(k, at);
          });
        sent += ids.size;
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      maxRss = Math.max(maxRss, rssMb(server.pid));
      await sleep(10);
    }
    await Promise.all(inflight);
    const elapsed = (Date.now() - start) / 1000;
    // Let the tail arrive (bounded), then judge.
    let receipts = await clients.collect();
    const seen = new Set(receipts.seq);
    for (const drainUntil = Date.now() + 5000; seen.size < commitAt.size && Date.now() < drainUntil; ) {
      await sleep(250);
      const more = await clients.collect();
      receipts = concatReceipts(receipts, more);
      for (const s of more.seq) seen.add(s);
    }
    const missing = [...commitAt.keys()].filter((k) => !seen.has(k));
    if (missing.length) console.log(`[rows] not delivered within the 5 s drain: ${missing.length} events, e.g. seq ${missing.slice(0, 5).join(', ')}`);
    const latencies: number[] = [];
    receipts.seq.forEach((s, k) => {
      const at = commitAt.get(s);
      if (at !== undefined) latencies.push(receipts.at[k]! - at);
    });
    report(
      `[rows] rate ${rate}/s (load avg ${loadavg()[0]!.toFixed(1)}): sockets ${clients.open}, server RSS max ${maxRss} MB, written ${sent}, ` +
        `delivered ${latencies.length} (${(latencies.length / elapsed).toFixed(0)}/s), commit->receipt ${stats(latencies)}`,
    );
  }
  clients.close();
  await writer.end();
  await server.stop();
}

/** What one or more fan-out updates came to, judged against the members list. */
function judgeFanout(receipts: Receipts, commitAt: Map<number, number>, sockets: number, offerOf: Map<number, number>) {
  const latencies: number[] = [];
  const lastBySeq = new Map<number, number>();
  const perSeq = new Map<number, Set<number>>();
  let duplicates = 0;
  let toNonMembers = 0;
  // A frame whose offer id is not the offer that update `seq` wrote (its new description carries seq).
  let wrongOffer = 0;
  receipts.seq.forEach((s, k) => {
    const socket = receipts.socket[k]!;
    const at = commitAt.get(s);
    if (at === undefined) return;
    if (receipts.row[k] !== offerOf.get(s)) wrongOffer++;
    if (!isMember(socket)) toNonMembers++;
    let got = perSeq.get(s);
    if (!got) perSeq.set(s, (got = new Set()));
    if (got.has(socket)) duplicates++;
    got.add(socket);
    const ms = receipts.at[k]! - at;
    latencies.push(ms);
    lastBySeq.set(s, Math.max(lastBySeq.get(s) ?? 0, ms));
  });
  const members = Array.from({ length: sockets }, (_, i) => i).filter(isMember).length;
  let missed = 0;
  for (const s of commitAt.keys()) missed += members - [...(perSeq.get(s) ?? [])].filter(isMember).length;
  return { latencies, last: [...lastBySeq.values()], members, missed, duplicates, toNonMembers, wrongOffer };
}

async function fanoutPart(users: User[]): Promise<void> {
  const sockets = Math.min(fanoutSockets, users.length);
  const server = await startServer();
  console.log(`\n[fanout] server pid ${server.pid}; RSS idle ${rssMb(server.pid)} MB; connecting ${sockets} signed-in sockets to public.offers...`);
  // Each frame's sequence number (in the new description) and the offer's id are read and checked.
  const clients = await openClients(server.wsUrl, offersJoins(users.slice(0, sockets)), { seqMarker: 'seq:', rowMarker: '"record":{"id":' });
  console.log(
    `[fanout] connected ${clients.open} sockets, ${clients.joined} joined, in ${fmt(clients.seconds)} s; server RSS ${rssMb(server.pid)} MB` +
      (Object.keys(clients.refused).length ? `; refused: ${JSON.stringify(clients.refused)}` : ''),
  );
  const writer = new pg.Client({ connectionString: database!.url });
  await writer.connect();
  const { rows: offers } = await writer.query<{ id: string }>(`select id::text from public.offers where audience = 'members' order by id`);
  let seq = 0;
  const offerOf = new Map<number, number>();
  const update = async (commitAt: Map<number, number>) => {
    const s = ++seq;
    const id = offers[s % offers.length]!.id;
    offerOf.set(s, Number(id));
    await writer.query(`update public.offers set description = $1 where id = $2`, [`Flash sale seq:${s}`, id]);
    commitAt.set(s, now());
  };
  const settleUntilAllArrived = async (commitAt: Map<number, number>, expected: number, maxMs: number) => {
    let receipts: Receipts = emptyReceipts();
    const merge = (more: Receipts) => (receipts = concatReceipts(receipts, more));
    for (const until = Date.now() + maxMs; receipts.seq.length < expected && Date.now() < until; ) {
      await sleep(100);
      merge(await clients.collect());
    }
    // A little longer, so a delivery to someone who must not have it would be seen.
    await sleep(500);
    merge(await clients.collect());
    return receipts;
  };
  const members = Array.from({ length: sockets }, (_, i) => i).filter(isMember).length;

  // One update, everyone watching.
  const before = await rlsDecisions(writer, false);
  const meter = await cpuMeter(server.pid, clients.pids);
  await meter.start();
  const single = new Map<number, number>();
  await update(single);
  const one = judgeFanout(await settleUntilAllArrived(single, members, 10_000), single, sockets, offerOf);
  const oneCpuFor = await meter.stop(1);
  const oneDecisions = (await rlsDecisions(writer, true)) - before;
  const oneCpu = oneCpuFor(oneDecisions);
  report(
    `[fanout] 1 update of a members offer, ${sockets} subscribers (${members} members, ${sockets - members} not): ` +
      `delivered ${one.latencies.length}, missed by members ${one.missed}, to non-members ${one.toNonMembers}, duplicates ${one.duplicates}, wrong offer ${one.wrongOffer}; ` +
      `RLS decisions made by PostgreSQL ${oneDecisions}; last member received ${fmt(one.last[0] ?? NaN)} ms after commit; commit->receipt ${stats(one.latencies)}; ` +
      oneCpu,
  );

  // Then a steady flash sale: `fanoutRate` updates a second.
  const steady = new Map<number, number>();
  await meter.start();
  const start = Date.now();
  let maxRss = 0;
  for (let k = 0; k < fanoutRate * fanoutSeconds; k++) {
    const due = start + (k * 1000) / fanoutRate;
    if (due > Date.now()) await sleep(due - Date.now());
    await update(steady);
    maxRss = Math.max(maxRss, rssMb(server.pid));
  }
  const elapsed = (Date.now() - start) / 1000;
  const many = judgeFanout(await settleUntilAllArrived(steady, members * steady.size, 15_000), steady, sockets, offerOf);
  const manyCpuFor = await meter.stop(steady.size);
  const manyDecisions = (await rlsDecisions(writer, true)) - before - oneDecisions;
  const manyCpu = manyCpuFor(manyDecisions);
  const lastSorted = [...many.last].sort((a, b) => a - b);
  report(
    `[fanout] ${steady.size} updates in ${fmt(elapsed)} s (load avg ${loadavg()[0]!.toFixed(1)}): delivered ${many.latencies.length} ` +
      `(${fmt(many.latencies.length / elapsed, 0)}/s) of ${members * steady.size}, missed by members ${many.missed}, to non-members ${many.toNonMembers}, ` +
      `duplicates ${many.duplicates}, wrong offer ${many.wrongOffer}; RLS decisions ${manyDecisions} (${fmt(manyDecisions / elapsed, 0)}/s) for ${sockets * steady.size} subscriber-updates; ` +
      `server RSS max ${maxRss} MB; commit->receipt ${stats(many.latencies)}; last member per update p50 ${fmt(percentile(lastSorted, 50))} ms, max ${fmt(lastSorted.at(-1) ?? NaN)} ms; ` +
      manyCpu,
  );
  const ok = one.missed + one.toNonMembers + one.duplicates + one.wrongOffer + many.missed + many.toNonMembers + many.duplicates + many.wrongOffer === 0;
  report(`[fanout] every member received every update once (its offer id and new description) and no non-member received any: ${ok ? 'yes' : 'NO'}`);
  if (!ok) process.exitCode = 1;
  report(`[fanout] reference: ${supabaseReference}`);
  clients.close();
  await meter.close();
  await writer.end();
  await server.stop();
}

function offersJoins(users: User[]) {
  return users.map((u) => ({
    topic: 'realtime:offers',
    payload: { config: { private: false, postgres_changes: [{ event: 'UPDATE', schema: 'public', table: 'offers' }] }, access_token: u.token },
  }));
}

async function socketsPart(users: User[]): Promise<void> {
  const sockets = Math.min(maxSockets, users.length);
  const server = await startServer();
  const idle = rssMb(server.pid);
  console.log(`\n[sockets] server pid ${server.pid}; RSS idle ${idle} MB; connecting ${sockets} signed-in sockets...`);
  // Each frame's sequence number (in the new description) and the offer's id are read and checked.
  const clients = await openClients(server.wsUrl, offersJoins(users.slice(0, sockets)), { seqMarker: 'seq:', rowMarker: '"record":{"id":' });
  // Let the joins' garbage go before reading RSS (a steady state, not the connect burst).
  await sleep(3000);
  const rss = rssMb(server.pid);
  const perSocketKb = ((rss - idle) * 1024) / Math.max(1, clients.open);
  const at25k = sockets < 25_000 ? idle + (25_000 * perSocketKb) / 1024 : rss;
  const capped =
    sockets < 25_000
      ? ` (capped: the open-files hard limit here is ${fdHardLimit}); extrapolated to 25,000 sockets: ${fmt(idle, 0)} MB idle + 25,000 x ${fmt(perSocketKb / 1024, 4)} MB = about ${fmt(at25k, 0)} MB`
      : '';
  report(
    `[sockets] ${clients.open} sockets open, ${clients.joined} joined, in ${fmt(clients.seconds)} s: server RSS ${rss} MB (idle ${idle} MB, ` +
      `${fmt(perSocketKb / 1024, 4)} MB = ${fmt(perSocketKb)} KB a socket)${capped}; target 25,000 in under 600 MB: ${at25k < 600 ? 'met' : 'NOT met'}`,
  );
  clients.close();
  await server.stop();
}

async function main() {
  database = await scratchDatabase();
  const needed = Math.max(parts.includes('rows') ? rowSockets : 0, parts.includes('fanout') ? fanoutSockets : 0, parts.includes('sockets') ? maxSockets : 0);
  const t0 = Date.now();
  console.log(`signing in ${needed} users...`);
  const users = await signInUsers(needed);
  console.log(`signed in ${users.length} users in ${fmt((Date.now() - t0) / 1000)} s`);
  if (parts.includes('rows')) await rowsPart(users);
  if (parts.includes('fanout')) await fanoutPart(users);
  if (parts.includes('sockets')) await socketsPart(users);
  console.log(`\nsummary (2 cores, PostgreSQL and the load generator on the same box):\n${summary.join('\n')}`);
}

let cleaned = false;
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const server of running) await server.stop().catch(() => undefined);
  await database?.drop().catch((err: unknown) => console.error(err));
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
