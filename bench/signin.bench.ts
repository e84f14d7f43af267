// Full passwordless sign-ins against the PostgreSQL server: send -> the code arrives by real SMTP ->
// verify -> read the profile. Baseline: the same SQL statements (the repositories' own functions,
// batched as the server batches them) driven straight through `pg` at the same concurrency, in the
// same run. Then the same flow on the embedded database (PGlite). Prints sign-ins/s, p50/p95/p99,
// CPU ms per sign-in (server, PostgreSQL, load generator), ours/baseline, and per sign-in what the
// database did (statements, WAL, commits, rows per table) and where the tail comes from (GC pauses,
// group-commit batch sizes, pool waits, WAL flushes).
//
// PostgreSQL: by default a throwaway cluster of the bench's own (bench/pg-cluster.ts, with
// pg_stat_statements preloaded, and its CPU counted alone); BENCH_DATABASE_URL=postgres://... uses
// that server instead (then PostgreSQL CPU and WAL include whatever else runs there).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBatcher, openPostgres, type Db } from '@hallpass/db';
import { finishMail } from '../packages/server/src/mail/outbox.repository.ts';
import { sendRequests, verifyCodes, type CodeToVerify, type NewSend } from '../packages/server/src/passwordless/passwordless.repository.ts';
import { selectVisibleProfileStatement } from '../packages/server/src/profiles/profiles.repository.ts';
import { runIfSessionLive } from '../packages/server/src/sessions/sessions.repository.ts';
import { adminUrl as adminUrlFromEnv, cpuMs, fmt, fullSignIn, jsonClient, ownCpuMs, percentile, postgresCpuMs, type ProbeReport, runLoad, type RunResult, scratchDatabase, smtpCodeSink, startServerProcess } from './lib.ts';
import { startOwnCluster } from './pg-cluster.ts';
import { hasStatements, watchRun, type RunStats } from './pg-stats.ts';

const levels = (process.env.BENCH_CONCURRENCY ?? '8,32,128').split(',').filter(Boolean).map(Number);
const pgliteLevels = (process.env.BENCH_PGLITE_CONCURRENCY ?? '8,32').split(',').filter(Boolean).map(Number);
const pgliteThreads = (process.env.BENCH_PGLITE_THREADS ?? 'worker,main').split(',').filter(Boolean);
const perLevel = Number(process.env.BENCH_SIGNINS ?? 2000);
const maxSeconds = Number(process.env.BENCH_SECONDS ?? 20);
const tenant = '00000000-0000-0000-0000-000000000000';


/**
 * Sign-ins before each level's measured run (bounded by 10 s). Enough for V8 to have optimised the
 * hot paths: with only concurrency x 4, a level measured first paid the JIT's warm-up, so the same
 * code cost 1.7 ms of server CPU per sign-in at concurrency 32 run alone and 1.2 ms after level 8.
 * 600 was still short of it: concurrency 32 alone, alternating, 1.57-1.67 ms after 600 and
 * 1.20-1.35 ms after 2,500 (a long-running server's steady state, whatever level runs first).
 */
const warmUp = (concurrency: number) => Math.max(concurrency * 4, Number(process.env.BENCH_WARMUP ?? 2500));

interface Measured extends RunResult {
  cpuPerSignIn: number;
  pgCpuPerSignIn: number;
  loadCpuPerSignIn: number;
  /** p50/p99 ms of each step of a sign-in, as the client saw it. */
  steps: Record<string, { p50: number; p99: number }>;
  stats?: RunStats;
  probe?: ProbeReport;
}

interface Target {
  /** Admin URL of the PostgreSQL server (omitted: the embedded PGlite). */
  adminUrl?: string;
  postmasterPid?: number | undefined;
  statements?: boolean;
  /** More environment for the server (e.g. PGLITE_THREAD). */
  env?: Record<string, string>;
}

/** Expected rows once every backend flushed its counters: one request, one session per sign-in. */
const flushed = (expected: number) => (t: Map<string, { ins: number }>) =>
  (t.get('hallpass.auth_requests')?.ins ?? 0) >= expected && (t.get('hallpass.sessions')?.ins ?? 0) >= expected;

async function measureOurs(target: Target, concurrencies: number[]): Promise<Map<number, Measured>> {
  const database = target.adminUrl ? await scratchDatabase(target.adminUrl) : undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-bench-'));
  const sink = await smtpCodeSink();
  const cleanUp = async () => {
    await sink.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const server = await startServerProcess(
    {
      ...(database ? { DATABASE_URL: database.url, DATABASE_POOL_SIZE: process.env.BENCH_POOL_SIZE ?? '32' } : {}),
      SMTP_URL: sink.url,
      DEV_MAILBOX: 'false',
      HALLPASS_SECRET: 'bench-secret-bench-secret-bench-secret-1234',
      HALLPASS_DATA_DIR: dataDir,
      // One load generator is one IP: lift the per-IP and per-address limits for the bench only.
      RATE_LIMIT_IP_PER_10_MINUTES: '1000000',
      RATE_LIMIT_EMAIL_PER_MINUTE: '1000',
      ...target.env,
    },
    { probe: true },
  ).catch(async (err: unknown) => {
    await cleanUp();
    throw err;
  });
  const results = new Map<number, Measured>();
  let started = 0;
  try {
    for (const concurrency of concurrencies) {
      const call = jsonClient(server.url, concurrency * 2);
      const run = `${concurrency}-${Date.now()}`;
      const steps = { send: [] as number[], mail: [] as number[], verify: [] as number[], profile: [] as number[] };
      const signIn = async (i: number, record = true) => {
        started++;
        const email = `bench-${run}-${i}@example.com`;
        const t0 = performance.now();
        const sent = await call('POST', '/api/auth/passwordless/send', { email });
        if (sent.status !== 200) throw new Error(`send ${sent.status} ${JSON.stringify(sent.body)}`);
        const t1 = performance.now();
        const code = await sink.code(email);
        const t2 = performance.now();
        const verified = await call('POST', '/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code });
        if (verified.status !== 200) throw new Error(`verify ${verified.status} ${JSON.stringify(verified.body)}`);
        const t3 = performance.now();
        const profile = await call('GET', '/api/profile', undefined, verified.cookies.join('; '));
        if (profile.status !== 200 || profile.body.profile.email !== email) throw new Error(`profile ${profile.status}`);
        if (record) {
          steps.send.push(t1 - t0);
          steps.mail.push(t2 - t1);
          steps.verify.push(t3 - t2);
          steps.profile.push(performance.now() - t3);
        }
      };
      await runLoad(concurrency, warmUp(concurrency), 10, (i) => signIn(-i - 1, false));
      const watch = database ? await settleThenWatch(database.url, target.statements ?? false, started) : undefined;
      await server.probe.reset();
      const [cpu0, pg0, load0] = [cpuMs(server.child.pid!), postgresCpuMs(target.postmasterPid), ownCpuMs()];
      const r = await runLoad(concurrency, perLevel, maxSeconds, (i) => signIn(i));
      const n = Math.max(1, r.done);
      const [cpu1, pg1, load1] = [cpuMs(server.child.pid!), postgresCpuMs(target.postmasterPid), ownCpuMs()];
      const probe = await server.probe.report();
      const stats = watch ? await watch.finish(n, flushed(started)) : undefined;
      const summary = (xs: number[]) => {
        const sorted = [...xs].sort((a, b) => a - b);
        return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
      };
      results.set(concurrency, {
        ...r,
        cpuPerSignIn: (cpu1 - cpu0) / n,
        pgCpuPerSignIn: database ? (pg1 - pg0) / n : 0,
        loadCpuPerSignIn: (load1 - load0) / n,
        steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, summary(v)])),
        probe,
        ...(stats ? { stats } : {}),
      });
    }
  } finally {
    await server.stop();
    await cleanUp();
  }
  return results;
}

/** Waits for the warm-up's table counters to be flushed, so the run's deltas are the run's own. */
async function settleThenWatch(url: string, statements: boolean, started: number) {
  const warm = await watchRun(url, false);
  await warm.finish(1, flushed(started));
  return watchRun(url, statements);
}

/**
 * The baseline drives the statements the way the server does: sends and code verifies through the
 * same group commit (createBatcher over the same repository functions), the mail (leased to the
 * sender at insert, so never claimed) marked sent in batches as the worker records it, the profile
 * read one statement per request.
 */
function baselineStatements(db: Db) {
  return {
    send: createBatcher((items: NewSend[]) => sendRequests(db, items, 60)),
    verify: createBatcher((items: CodeToVerify[]) => verifyCodes(db, { at: new Date(), maxAttempts: 5, windowSeconds: 600, budget: { limit: 20, periodSeconds: 86_400 } }, items)),
    mailSent: createBatcher(async (ids: number[]) => {
      await finishMail(db, ids, 'sent');
      return ids;
    }),
  };
}

/** The statements one sign-in runs, with no HTTP, crypto or mail around them. */
async function baselineSignIn(db: Db, statements: ReturnType<typeof baselineStatements>, email: string): Promise<void> {
  const id = randomUUID();
  const digest = Buffer.alloc(32, 7);
  // POST /send: the limits, then the request with its queued mail, in one statement.
  const sent = await statements.send({
      request: {
        id, tenantId: tenant, email, type: 'LINK_OTP', codeHash: digest, linkHash: Buffer.from(id), bindingHash: null,
        state: null, redirectTo: null, expiresAt: new Date(Date.now() + 300_000), ip: '127.0.0.1', userAgent: 'bench',
      },
      mail: digest,
      rules: [
        { key: `email:1m:${tenant}:${email}`, limit: 1000, periodSeconds: 60 },
        { key: `email:1h:${tenant}:${email}`, limit: 10, periodSeconds: 3600 },
        { key: `ip:10m:127.0.0.1`, limit: 1_000_000, periodSeconds: 600 },
      ],
  });
  if (sent.refused) throw new Error('baseline send refused by a limit');
  // The mail worker delivers it from memory, then records it as sent.
  await statements.mailSent(sent.mail.id);
  // POST /verify: the verify statement (lock, checks, sign-in write, profile_sync).
  const verified = await statements.verify({
    authRequestId: id, presented: digest, amr: [{ method: 'otp', timestamp: 0 }], userAgent: 'bench', ip: '127.0.0.1',
    sessionExpiresAt: new Date(Date.now() + 86_400_000), refreshHash: Buffer.from(randomUUID()),
  });
  if (verified?.outcome !== 'ok') throw new Error(`baseline verify: ${verified?.outcome}`);
  const { profile, session } = verified.signIn;
  // GET /api/profile: one statement that checks the session, sets role and claims, reads under RLS.
  const claims = { role: 'authenticated', sub: profile.id, email, session_id: session.id, app_metadata: { tenant_id: tenant } };
  const read = selectVisibleProfileStatement(profile.id);
  const got = await runIfSessionLive(db, { sessionId: session.id, profileId: profile.id, claimsJson: JSON.stringify(claims), now: new Date() }, read.sql, read.params);
  if (got?.n !== 1) throw new Error('baseline profile read found no row');
}

async function measureBaseline(target: Target & { adminUrl: string }): Promise<Map<number, Measured>> {
  const database = await scratchDatabase(target.adminUrl);
  // The server's own migrations give the baseline the same schema.
  const { runMigrations } = await import('../packages/server/src/server.ts');
  const db = await openPostgres({ connectionString: database.url, max: 32 });
  const results = new Map<number, Measured>();
  let started = 0;
  try {
    await runMigrations(db);
    const statements = baselineStatements(db);
    for (const concurrency of levels) {
      const run = `${concurrency}-${Date.now()}`;
      const signIn = (email: string) => (started++, baselineSignIn(db, statements, email));
      await runLoad(concurrency, warmUp(concurrency), 10, (i) => signIn(`warm-${run}-${i}@example.com`));
      const watch = await settleThenWatch(database.url, target.statements ?? false, started);
      const [pg0, load0] = [postgresCpuMs(target.postmasterPid), ownCpuMs()];
      const r = await runLoad(concurrency, perLevel, maxSeconds, (i) => signIn(`base-${run}-${i}@example.com`));
      const n = Math.max(1, r.done);
      const [pg1, load1] = [postgresCpuMs(target.postmasterPid), ownCpuMs()];
      const stats = await watch.finish(n, flushed(started));
      results.set(concurrency, { ...r, cpuPerSignIn: (load1 - load0) / n, pgCpuPerSignIn: (pg1 - pg0) / n, loadCpuPerSignIn: 0, steps: {}, stats });
    }
  } finally {
    await db.close();
    await database.drop();
  }
  return results;
}

const pad = (s: string, n: number) => s.padStart(n);
const ms = (n: number) => fmt(n, 2);

function printDatabaseWork(label: string, st: RunStats | undefined): void {
  if (!st) return;
  const p = st.perSignIn;
  console.log(
    `      ${label} per sign-in: ${p.statements !== undefined ? `${fmt(p.statements, 2)} statements (+${fmt(p.nestedStatements!, 1)} inside functions/triggers), ` : ''}` +
      `${fmt(p.walBytes, 0)} WAL bytes (${fmt(p.walFpi, 2)} full-page images), ${fmt(p.commits, 2)} commits, ${fmt(p.walSyncs, 2)} WAL flushes (${ms(p.walSyncMs)} ms), ${fmt(p.rowsWritten, 1)} rows written`,
  );
  console.log(`        rows per table: ${st.tables.map((t) => `${t.table.replace(/^(hallpass|public)\./, '')} +${fmt(t.ins, 2)}/~${fmt(t.upd, 2)}${t.upd ? ` (HOT ${fmt(t.hot, 2)})` : ''}${t.del ? `/-${fmt(t.del, 2)}` : ''}`).join(', ')}`);
}

function printStatements(st: RunStats | undefined, top: number): void {
  if (!st?.statements) return;
  console.log('        costliest statements per sign-in (pg_stat_statements; exec ms, WAL bytes, calls; nested ones indented):');
  for (const s of st.statements.slice(0, top)) {
    console.log(`          ${s.toplevel ? '' : '  '}${ms(s.ms).padStart(6)} ms ${fmt(s.walBytes, 0).padStart(6)} B ${fmt(s.calls, 2).padStart(5)}x  ${s.query.slice(0, 110)}`);
  }
}

function printTail(o: Measured): void {
  const steps = Object.entries(o.steps).map(([k, v]) => `${k} ${fmt(v.p50)}/${fmt(v.p99)}`).join(', ');
  console.log(`      steps p50/p99 ms: ${steps}`);
  const pr = o.probe;
  if (!pr) return;
  const batches = Object.entries(pr.batches)
    .map(([k, b]) => `${k} size p50 ${fmt(b.size.p50, 0)} p99 ${fmt(b.size.p99, 0)} max ${fmt(b.size.max, 0)}, queued p99 ${fmt(b.queuedMs.p99)} ms, run p50/p99 ${fmt(b.runMs.p50)}/${fmt(b.runMs.p99)} ms`)
    .join('; ');
  console.log(
    `      tail sources: GC ${pr.gc.count} pauses, ${ms(pr.gc.total / Math.max(1, o.done))} ms/sign-in, p99 ${ms(pr.gc.p99)} max ${ms(pr.gc.max)} ms; ` +
      `event-loop delay p99 ${fmt(pr.loopDelay.p99)} max ${fmt(pr.loopDelay.max)} ms; pool wait p99 ${ms(pr.poolWaitMs.p99)} max ${ms(pr.poolWaitMs.max)} ms`,
  );
  if (batches) console.log(`      group commit: ${batches}`);
}

// The bench's own PostgreSQL cluster unless BENCH_DATABASE_URL names a server.
const cluster = process.env.BENCH_DATABASE_URL ? undefined : await startOwnCluster();
// Interrupted: stop the cluster and remove its files all the same.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void (cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(1)));
const pgTarget = { adminUrl: cluster?.adminUrl ?? adminUrlFromEnv, postmasterPid: cluster?.postmasterPid };
let ours: Map<number, Measured>;
let base: Map<number, Measured>;
try {
  const statements = await hasStatements(pgTarget.adminUrl);
  ours = await measureOurs({ ...pgTarget, statements }, levels);
  base = await measureBaseline({ ...pgTarget, statements });
  if (!statements) console.log('(pg_stat_statements is not preloaded on this server: statement counts and costs are not shown)');
} finally {
  await cluster?.stop();
}
// PGlite in its own thread (the default) and, for the ratio, in the server's main thread.
const pglite = new Map<string, Map<number, Measured>>();
for (const thread of pgliteThreads) if (pgliteLevels.length) pglite.set(thread, await measureOurs({ env: { PGLITE_THREAD: thread } }, pgliteLevels));

console.log(
  `full sign-ins (send, code by SMTP, verify, read profile) against PostgreSQL (${cluster ? "the bench's own cluster" : 'BENCH_DATABASE_URL'}); up to ${perLevel} per level or ${maxSeconds}s`,
);
console.log('concurrency | hallpass sign-ins/s | p50 ms | p95 ms | p99 ms | p99/p50 | server CPU ms/sign-in | PostgreSQL CPU ms/sign-in | baseline (pg) sign-ins/s | baseline p99 ms | ratio ours/baseline');
for (const c of levels) {
  const o = ours.get(c)!;
  const b = base.get(c)!;
  console.log(
    `${pad(String(c), 11)} | ${pad(fmt(o.perSecond), 19)} | ${pad(fmt(o.p50), 6)} | ${pad(fmt(o.p95), 6)} | ${pad(fmt(o.p99), 6)} | ${pad(fmt(o.p99 / o.p50, 2), 7)} | ${pad(ms(o.cpuPerSignIn), 21)} | ${pad(ms(o.pgCpuPerSignIn), 25)} | ${pad(fmt(b.perSecond), 24)} | ${pad(fmt(b.p99), 15)} | ${pad(fmt(o.perSecond / b.perSecond, 2), 19)}`,
  );
  // Where the machine's CPU went: the server, PostgreSQL, and this process (HTTP client + SMTP sink).
  console.log(
    `      CPU ms per sign-in: server ${ms(o.cpuPerSignIn)}, PostgreSQL ${ms(o.pgCpuPerSignIn)}, load generator and SMTP sink ${ms(o.loadCpuPerSignIn)}; baseline: PostgreSQL ${ms(b.pgCpuPerSignIn)}, its pg client ${ms(b.cpuPerSignIn)}`,
  );
  printDatabaseWork('hallpass', o.stats);
  printDatabaseWork('baseline', b.stats);
  printTail(o);
  if (o.failed || b.failed) console.log(`  failures: hallpass ${o.failed}, baseline ${b.failed}`);
}
const costly = ours.get(levels.includes(32) ? 32 : levels[0]!);
if (costly?.stats?.statements) {
  console.log(`\nhallpass, concurrency ${levels.includes(32) ? 32 : levels[0]}:`);
  printStatements(costly.stats, Number(process.env.BENCH_TOP_STATEMENTS ?? 25));
}
if (pglite.size) {
  console.log("\nthe same sign-ins on the embedded database (PGlite, npm start's default), in its own thread (PGLITE_THREAD=worker, the default) and in the server's main thread");
  console.log('PGlite thread | concurrency | hallpass sign-ins/s | p50 ms | p95 ms | p99 ms | p99/p50 | CPU ms/sign-in (server with its database) | ratio to main thread');
  for (const [thread, rows] of pglite) for (const [c, o] of rows) {
    const main = pglite.get('main')?.get(c);
    console.log(`${pad(thread, 13)} | ${pad(String(c), 11)} | ${pad(fmt(o.perSecond), 19)} | ${pad(fmt(o.p50), 6)} | ${pad(fmt(o.p95), 6)} | ${pad(fmt(o.p99), 6)} | ${pad(fmt(o.p99 / o.p50, 2), 7)} | ${pad(ms(o.cpuPerSignIn), 42)} | ${pad(main ? fmt(o.perSecond / main.perSecond, 2) : '-', 20)}`);
    console.log(`      CPU ms per sign-in: server ${ms(o.cpuPerSignIn)}, load generator and SMTP sink ${ms(o.loadCpuPerSignIn)}`);
    printTail(o);
    if (o.failed) console.log(`  failures: ${o.failed}`);
  }
}
