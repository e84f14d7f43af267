// Shared bench plumbing: a scratch database, a child server process, latency statistics, CPU time.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SMTPServer } from 'smtp-server';
import { createScratchDatabase } from '@hallpass/db/testing';

export const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh database on the bench PostgreSQL server (or the one at `admin`), dropped by `drop()`. */
export function scratchDatabase(admin = adminUrl): Promise<{ url: string; drop(): Promise<void> }> {
  return createScratchDatabase(admin, 'hallpass_bench');
}

// One free-port helper for tests and benches.
import { freePort } from '../packages/server/test/server-process.ts';
export { freePort };

/** What bench/probe.mjs reports from inside the server. */
export interface Summary {
  count: number;
  total: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ProbeReport {
  gc: Summary;
  /** Event-loop delay in ms (resolution 10 ms samples by monitorEventLoopDelay). */
  loopDelay: { p50: number; p99: number; max: number };
  batches: Record<string, { size: Summary; queuedMs: Summary; runMs: Summary }>;
  poolWaitMs: Summary;
  poolRunMs: Summary;
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** With `probe`: clears the probe's samples, then (report) returns them (see bench/probe.mjs). */
  probe: { reset(): Promise<void>; report(): Promise<ProbeReport> };
  stop(): Promise<void>;
}

/**
 * Starts `hallpass serve` in its own process (so its CPU time is its own) and waits until it
 * listens. `probe` loads bench/probe.mjs into it (GC pauses, batch sizes, pool waits, over IPC).
 */
export async function startServerProcess(env: Record<string, string>, options: { probe?: boolean } = {}): Promise<ServerProcess> {
  const port = await freePort();
  const main = fileURLToPath(new URL('../packages/cli/src/main.ts', import.meta.url));
  const probeArgs = options.probe ? ['--import', fileURLToPath(new URL('./probe.mjs', import.meta.url))] : [];
  const nodeArgs = [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), '--import', 'tsx', ...probeArgs, main, 'serve'];
  // Through sh to raise the soft open-files limit to the hard one (realtime benches hold 10,000+
  // sockets); exec keeps the child's pid the server's (and its IPC channel, for the probe).
  const child = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, ...nodeArgs], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), APP_BASE_URL: `http://127.0.0.1:${port}`, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit', ...(options.probe ? (['ipc'] as const) : [])],
  });
  const ask = <T>(msg: string, answer: string): Promise<T> =>
    new Promise((resolve, reject) => {
      if (!child.send) return reject(new Error('server started without the probe'));
      const on = (m: any) => {
        if (m?.probe !== answer) return;
        child.off('message', on);
        resolve(m.report as T);
      };
      child.on('message', on);
      child.send(msg);
    });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!out.includes('listening')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${out}`);
    await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    probe: { reset: () => ask<void>('probe:reset', 'reset'), report: () => ask<ProbeReport>('probe:report', 'report') },
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  cpuMs: number;
  /** CPU of its children that ended and were reaped. */
  reapedChildrenCpuMs: number;
}

function readProcStat(pid: string): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    // After "pid (comm) ": state, ppid, ... utime and stime are fields 14 and 15 of stat, in clock
    // ticks (100 per second on Linux).
    return {
      pid: Number(pid),
      ppid: Number(fields[1]),
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
      reapedChildrenCpuMs: (Number(fields[13]) + Number(fields[14])) * 10,
    };
  } catch {
    return undefined; // The process ended while we looked.
  }
}

const allProcesses = (): ProcStat[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(readProcStat)
    .filter((p): p is ProcStat => p !== undefined);

/** CPU milliseconds (user + system) a process and all its descendants (e.g. cluster workers) have used. */
export function cpuMs(pid: number): number {
  const all = allProcesses();
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (tree.has(p.ppid) && !tree.has(p.pid)) (tree.add(p.pid), (grew = true));
  }
  return all.filter((p) => tree.has(p.pid)).reduce((sum, p) => sum + p.cpuMs, 0);
}

/**
 * CPU milliseconds used so far by PostgreSQL: the cluster whose postmaster is `postmasterPid` (the
 * bench's own cluster), or without it every PostgreSQL on this machine (a shared server: other
 * users' work counts too). Live processes plus the backends that already ended (their time is
 * added to the postmaster's reaped-children total, so a pool closing idle connections does not make
 * the sum go down).
 */
export function postgresCpuMs(postmasterPid?: number): number {
  if (postmasterPid !== undefined) {
    const postmaster = readProcStat(String(postmasterPid));
    return cpuMs(postmasterPid) + (postmaster?.reapedChildrenCpuMs ?? 0);
  }
  const pg = allProcesses().filter((p) => p.comm === 'postgres');
  const pids = new Set(pg.map((p) => p.pid));
  return pg.reduce((sum, p) => sum + p.cpuMs + (pids.has(p.ppid) ? 0 : p.reapedChildrenCpuMs), 0);
}

/** CPU milliseconds used so far by the given processes (those still running). */
export function pidsCpuMs(pids: readonly number[]): number {
  return pids.map((p) => readProcStat(String(p))?.cpuMs ?? 0).reduce((a, b) => a + b, 0);
}

/** CPU milliseconds this process (the load generator) has used. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface RunResult {
  done: number;
  failed: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
}

/**
 * Runs `task` with `concurrency` workers until `count` tasks ran or `maxSeconds` passed (both bound
 * the run), and returns throughput and latency percentiles in ms.
 */
export async function runLoad(concurrency: number, count: number, maxSeconds: number, task: (i: number) => Promise<void>): Promise<RunResult> {
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  let firstError: unknown;
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count && performance.now() < deadline) {
        const i = next++;
        const t0 = performance.now();
        try {
          await task(i);
          latencies.push(performance.now() - t0);
        } catch (err) {
          failed++;
          firstError ??= err;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (firstError) console.error('first failure:', firstError);
  latencies.sort((a, b) => a - b);
  return {
    done: latencies.length,
    failed,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
  };
}

/** A small keep-alive JSON client over node:http (lighter than fetch, so the load generator stays cheap). */
export function jsonClient(base: string, maxSockets: number, origin = base) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const { hostname, port } = new URL(base);
  return function call(method: string, path: string, body?: unknown, cookie?: string): Promise<{ status: number; body: any; cookies: string[] }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          hostname,
          port,
          method,
          path,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
            ...(method !== 'GET' ? { origin } : {}),
            ...(cookie ? { cookie } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            resolve({
              status: res.statusCode ?? 0,
              body: text && res.headers['content-type']?.includes('json') ? JSON.parse(text) : text,
              cookies: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!),
            });
          });
        },
      );
      // Without this, small keep-alive requests wait on Nagle + delayed ACK (~40 ms each).
      req.on('socket', (socket) => socket.setNoDelay(true));
      req.on('error', reject);
      req.end(payload);
    });
  };
}

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** A real SMTP server in this process; resolves each address's code as its mail arrives. */
export async function smtpCodeSink() {
  const waiting = new Map<string, (code: string) => void>();
  const arrived = new Map<string, string>();
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        const to = session.envelope.rcptTo[0]?.address.toLowerCase() ?? '';
        const code = /Your code: (\d{6})/.exec(raw)?.[1] ?? '';
        const w = waiting.get(to);
        if (w) (waiting.delete(to), w(code));
        else arrived.set(to, code);
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    code(to: string): Promise<string> {
      const have = arrived.get(to);
      if (have) return (arrived.delete(to), Promise.resolve(have));
      return new Promise((resolve) => waiting.set(to, resolve));
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * One full sign-in: send, the code by SMTP, verify, read the profile (checked to be the address's).
 * Returns the session cookies.
 */
export async function fullSignIn(call: ReturnType<typeof jsonClient>, sink: Awaited<ReturnType<typeof smtpCodeSink>>, email: string): Promise<string[]> {
  const sent = await call('POST', '/api/auth/passwordless/send', { email });
  if (sent.status !== 200) throw new Error(`send ${sent.status} ${JSON.stringify(sent.body)}`);
  const code = await sink.code(email);
  const verified = await call('POST', '/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code });
  if (verified.status !== 200) throw new Error(`verify ${verified.status} ${JSON.stringify(verified.body)}`);
  const profile = await call('GET', '/api/profile', undefined, verified.cookies.join('; '));
  if (profile.status !== 200 || profile.body.profile.email !== email) throw new Error(`profile ${profile.status}`);
  return verified.cookies;
}
