// Full passwordless sign-ins against the PostgreSQL server: send -> the code arrives by real SMTP ->
// verify -> read the profile. Baseline: the same SQL statements (the repositories' own functions,
// batched as the server batches them) driven straight through `pg` at the same concurrency, in the
// same run. Prints sign-ins/s, p50/p95/p99, server CPU ms per sign-in, and ours/baseline.
import { randomUUID } from 'node:crypto';
import { createBatcher, openPostgres, type Db } from '@hallpass/db';
import { finishMail } from '../packages/server/src/mail/outbox.repository.ts';
import { sendRequests, verifyCodes, type CodeToVerify, type NewSend } from '../packages/server/src/passwordless/passwordless.repository.ts';
import { selectVisibleProfileStatement } from '../packages/server/src/profiles/profiles.repository.ts';
import { runIfSessionLive } from '../packages/server/src/sessions/sessions.repository.ts';
import { cpuMs, fmt, fullSignIn, jsonClient, ownCpuMs, postgresCpuMs, runLoad, scratchDatabase, smtpCodeSink, startServerProcess, type RunResult } from './lib.ts';

const levels = (process.env.BENCH_CONCURRENCY ?? '8,32,128').split(',').map(Number);
const perLevel = Number(process.env.BENCH_SIGNINS ?? 2000);
const maxSeconds = Number(process.env.BENCH_SECONDS ?? 20);
const tenant = '00000000-0000-0000-0000-000000000000';

async function measureOurs(): Promise<Map<number, RunResult & { cpuPerSignIn: number; pgCpuPerSignIn: number; loadCpuPerSignIn: number }>> {
  const database = await scratchDatabase();
  const sink = await smtpCodeSink();
  const server = await startServerProcess({
    DATABASE_URL: database.url,
    SMTP_URL: sink.url,
    DEV_MAILBOX: 'false',
    HALLPASS_SECRET: 'bench-secret-bench-secret-bench-secret-1234',
    HALLPASS_DATA_DIR: `/tmp/hallpass-bench-${process.pid}`,
    // One load generator is one IP: lift the per-IP and per-address limits for the bench only.
    RATE_LIMIT_IP_PER_10_MINUTES: '1000000',
    RATE_LIMIT_EMAIL_PER_MINUTE: '1000',
    DATABASE_POOL_SIZE: '32',
  });
  const results = new Map<number, RunResult & { cpuPerSignIn: number; pgCpuPerSignIn: number; loadCpuPerSignIn: number }>();
  try {
    for (const concurrency of levels) {
      const call = jsonClient(server.url, concurrency * 2);
      const run = `${concurrency}-${Date.now()}`;
      const signIn = (i: number) => fullSignIn(call, sink, `bench-${run}-${i}@example.com`).then(() => {});
      await runLoad(concurrency, concurrency * 4, 10, (i) => signIn(-i - 1)); // warm-up
      const [cpu0, pg0, load0] = [cpuMs(server.child.pid!), postgresCpuMs(), ownCpuMs()];
      const r = await runLoad(concurrency, perLevel, maxSeconds, signIn);
      const n = Math.max(1, r.done);
      results.set(concurrency, {
        ...r,
        cpuPerSignIn: (cpuMs(server.child.pid!) - cpu0) / n,
        pgCpuPerSignIn: (postgresCpuMs() - pg0) / n,
        loadCpuPerSignIn: (ownCpuMs() - load0) / n,
      });
    }
  } finally {
    await server.stop();
    await sink.close();
    await database.drop();
  }
  return results;
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
    verify: createBatcher((items: CodeToVerify[]) => verifyCodes(db, { at: new Date(), maxAttempts: 5, windowSeconds: 600 }, items)),
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

async function measureBaseline(): Promise<Map<number, RunResult>> {
  const database = await scratchDatabase();
  // The server's own migrations give the baseline the same schema.
  const { runMigrations } = await import('../packages/server/src/server.ts');
  const db = await openPostgres({ connectionString: database.url, max: 32 });
  const results = new Map<number, RunResult>();
  try {
    await runMigrations(db);
    const statements = baselineStatements(db);
    for (const concurrency of levels) {
      const run = `${concurrency}-${Date.now()}`;
      await runLoad(concurrency, concurrency * 4, 10, (i) => baselineSignIn(db, statements, `warm-${run}-${i}@example.com`));
      results.set(concurrency, await runLoad(concurrency, perLevel, maxSeconds, (i) => baselineSignIn(db, statements, `base-${run}-${i}@example.com`)));
    }
  } finally {
    await db.close();
    await database.drop();
  }
  return results;
}

const ours = await measureOurs();
const base = await measureBaseline();
console.log(`full sign-ins (send, code by SMTP, verify, read profile) against PostgreSQL; up to ${perLevel} per level or ${maxSeconds}s`);
console.log('concurrency | hallpass sign-ins/s | p50 ms | p95 ms | p99 ms | server CPU ms/sign-in | baseline (pg) sign-ins/s | baseline p99 ms | ratio ours/baseline');
for (const c of levels) {
  const o = ours.get(c)!;
  const b = base.get(c)!;
  console.log(
    `${String(c).padStart(11)} | ${fmt(o.perSecond).padStart(19)} | ${fmt(o.p50).padStart(6)} | ${fmt(o.p95).padStart(6)} | ${fmt(o.p99).padStart(6)} | ${fmt(o.cpuPerSignIn, 2).padStart(21)} | ${fmt(b.perSecond).padStart(24)} | ${fmt(b.p99).padStart(15)} | ${fmt(o.perSecond / b.perSecond, 2).padStart(19)}`,
  );
  // Where the machine's CPU went: the server, PostgreSQL, and this process (HTTP client + SMTP sink).
  console.log(
    `${' '.repeat(11)}   CPU ms per sign-in: server ${fmt(o.cpuPerSignIn, 2)}, PostgreSQL ${fmt(o.pgCpuPerSignIn, 2)}, load generator and SMTP sink ${fmt(o.loadCpuPerSignIn, 2)}`,
  );
  if (o.failed || b.failed) console.log(`  failures: hallpass ${o.failed}, baseline ${b.failed}`);
}
