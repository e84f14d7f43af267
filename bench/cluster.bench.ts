// Three Hallpass instances behind nginx on one PostgreSQL (what deploy/compose.yaml runs, without
// Docker): full sign-ins through nginx with 1 instance and with 3 (sign-ins/s, p99, CPU ms per
// sign-in), and, in the same run, the cross-instance guarantees: the send limits hold across
// instances, a profile change on A reaches a subscriber on C, revoking a session on B closes its
// channels on A, and realtime works through nginx's WebSocket upgrade.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { cpuMs, fmt, freePort, fullSignIn, jsonClient, ownCpuMs, postgresCpuMs, runLoad, scratchDatabase, smtpCodeSink, startServerProcess } from './lib.ts';

const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const perRun = Number(process.env.BENCH_SIGNINS ?? 1500);
const maxSeconds = Number(process.env.BENCH_SECONDS ?? 20);

/** nginx from Debian (`nginx-light`), installed when missing. */
function ensureNginx(): string {
  const found = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (found) return found;
  console.log('nginx not found: apt-get install -y nginx-light');
  const r = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('could not install nginx-light');
  return '/usr/sbin/nginx';
}

/**
 * deploy/nginx.conf with this machine's ports: the upstream servers, the listen ports, and what a
 * non-daemon, non-root-path run needs (pid, logs and temp files in `dir`).
 */
function nginxConfig(dir: string, listen: number, grpcListen: number, upstreams: string[]): string {
  const shipped = readFileSync(fileURLToPath(new URL('../deploy/nginx.conf', import.meta.url)), 'utf8');
  const servers = upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=5s;`).join('\n');
  let conf = shipped
    .replace(/(?:    server hallpass\d:3000[^\n]*\n)+/, `${servers}\n`)
    .replace('worker_processes auto;', 'worker_processes 1;')
    .replace('listen 80;', `listen 127.0.0.1:${listen};`)
    .replace('listen 50051 http2;', `listen 127.0.0.1:${grpcListen} http2;`)
    .replace('http {', `http {\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;`);
  if (conf === shipped || !conf.includes(upstreams[0]!)) throw new Error('deploy/nginx.conf changed shape: update the bench template');
  conf = `daemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n${conf}`;
  return conf;
}

async function startNginx(nginx: string, port: number, upstreams: string[]): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hallpass-nginx-'));
  chmodSync(dir, 0o777);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, await freePort(), upstreams));
  const test = spawnSync(nginx, ['-t', '-q', '-c', conf, '-p', dir], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t: ${test.stderr}`);
  const child = spawn(nginx, ['-c', conf, '-p', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      if (i > 100) throw new Error('nginx did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    child,
    async stop() {
      child.kill('SIGQUIT');
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const cookieValue = (cookies: string[], name: string) => cookies.find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);

async function realtimeClient(url: string, token: string): Promise<SupabaseClient> {
  const { anonKey } = (await (await fetch(`${url}/api/config`)).json()) as { anonKey: string };
  return createClient(url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never, heartbeatIntervalMs: 5000 },
    accessToken: async () => token,
  });
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref())]);
}

/** Subscribes to the user's profile row; resolves each UPDATE's name with the time it arrived. */
async function subscribeProfile(client: SupabaseClient, id: string, email: string) {
  const arrivals: Array<{ name: string; at: number }> = [];
  const waiters: Array<() => void> = [];
  const closed: string[] = [];
  await within(
    10_000,
    'subscribe',
    new Promise<void>((resolve, reject) => {
      client
        .channel(`user:${id}`, { config: { private: true } })
        .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'profiles', filter: `email=eq.${email}` }, (e) => {
          arrivals.push({ name: (e.new as { name: string }).name, at: performance.now() });
          waiters.splice(0).forEach((w) => w());
        })
        .on('system', {}, (m) => {
          if (m.status === 'error') (closed.push(String(m.message)), waiters.splice(0).forEach((w) => w()));
        })
        .subscribe((status, err) => (status === 'SUBSCRIBED' ? resolve() : status === 'CHANNEL_ERROR' ? reject(err ?? new Error(status)) : undefined));
    }),
  );
  const until = (pred: () => boolean, what: string) =>
    within(10_000, what, new Promise<void>((resolve) => (pred() ? resolve() : waiters.push(function check() { if (pred()) resolve(); else waiters.push(check); }))));
  return { arrivals, closed, until };
}

const nginx = ensureNginx();
const database = await scratchDatabase();
const sink = await smtpCodeSink();
const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-cluster-'));
const nginxPort = await freePort();
const publicOrigin = `http://127.0.0.1:${nginxPort}`;
const env = {
  DATABASE_URL: database.url,
  SMTP_URL: sink.url,
  DEV_MAILBOX: 'false',
  HALLPASS_SECRET: 'bench-secret-bench-secret-bench-secret-1234',
  HALLPASS_DATA_DIR: dataDir,
  // One hop: nginx. Its X-Forwarded-For is the client's address.
  TRUST_PROXY: '1',
  RATE_LIMIT_IP_PER_10_MINUTES: '1000000',
  DATABASE_POOL_SIZE: '16',
  // Links in mail and the Origin check use the public origin: nginx's.
  APP_BASE_URL: publicOrigin,
};
const instances: Array<Awaited<ReturnType<typeof startServerProcess>>> = [];
const stops: Array<() => Promise<unknown>> = [];
try {
  // One after another: the first writes the shared signing key into the data dir.
  for (let i = 0; i < 3; i++) {
    const s = await startServerProcess(env);
    instances.push(s);
    stops.push(() => s.stop());
  }
  const upstream = (s: { url: string }) => s.url.replace('http://', '');
  const results: Array<{ n: number; r: Awaited<ReturnType<typeof runLoad>>; hallpassCpu: number; nginxCpu: number; pgCpu: number; loadCpu: number }> = [];
  for (const n of [1, 3]) {
    const front = await startNginx(nginx, nginxPort, instances.slice(0, n).map(upstream));
    const call = jsonClient(front.url, concurrency * 2);
    const run = `${n}-${Date.now()}`;
    await runLoad(concurrency, concurrency * 3, 10, (i) => fullSignIn(call, sink, `warm-${run}-${i}@example.com`).then(() => {}));
    const cpu0 = instances.reduce((s, p) => s + cpuMs(p.child.pid!), 0);
    const [ng0, pg0, load0] = [cpuMs(front.child.pid!), postgresCpuMs(), ownCpuMs()];
    const r = await runLoad(concurrency, perRun, maxSeconds, (i) => fullSignIn(call, sink, `cluster-${run}-${i}@example.com`).then(() => {}));
    const done = Math.max(1, r.done);
    results.push({
      n,
      r,
      hallpassCpu: (instances.reduce((s, p) => s + cpuMs(p.child.pid!), 0) - cpu0) / done,
      nginxCpu: (cpuMs(front.child.pid!) - ng0) / done,
      pgCpu: (postgresCpuMs() - pg0) / done,
      loadCpu: (ownCpuMs() - load0) / done,
    });
    await front.stop();
  }

  // The guarantees, with all three behind one nginx.
  const front = await startNginx(nginx, nginxPort, instances.map(upstream));
  stops.push(() => front.stop());
  const [A, B, C] = instances as [typeof instances[0], typeof instances[0], typeof instances[0]];
  // Straight to one instance, as a browser on the public origin would (the Origin check passes).
  const via = (s: { url: string }) => jsonClient(s.url, 4, publicOrigin);

  // 1. Send limits across instances: the per-address limit (2 a minute) counts sends on A, B and C.
  const limited = `limits-${Date.now()}@example.com`;
  const limitStatuses = [];
  for (const s of [A, B, C]) {
    const res = await via(s)('POST', '/api/auth/passwordless/send', { email: limited });
    limitStatuses.push(res.status === 200 ? 200 : `${res.status} ${res.body.error.code}`);
  }
  if (limitStatuses[2] !== '429 email_rate_limited_minute') throw new Error(`send limit did not hold across instances: ${limitStatuses.join(', ')}`);

  // 2. A profile change on A reaches a subscriber on C; and one through nginx's WebSocket upgrade.
  const userEmail = `realtime-${Date.now()}@example.com`;
  const cookies = await fullSignIn(jsonClient(front.url, 4), sink, userEmail);
  const token = cookieValue(cookies, 'hallpass-access')!;
  const me = (await jsonClient(front.url, 1)('GET', '/api/profile', undefined, cookies.join('; '))).body.profile as { id: string };
  const onC = await realtimeClient(C.url, token);
  const subC = await subscribeProfile(onC, me.id, userEmail);
  const throughNginx = await realtimeClient(front.url, token);
  const subN = await subscribeProfile(throughNginx, me.id, userEmail);
  const patchedAt = performance.now();
  const patch = await fetch(`${A.url}/api/profile`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'changed on A' }),
  });
  if (patch.status !== 200) throw new Error(`PATCH on A: ${patch.status}`);
  await subC.until(() => subC.arrivals.some((a) => a.name === 'changed on A'), 'change from A on C');
  await subN.until(() => subN.arrivals.some((a) => a.name === 'changed on A'), 'change through nginx');
  const aToC = subC.arrivals.find((a) => a.name === 'changed on A')!.at - patchedAt;

  // 3. Revoking the session on B closes its channels on A.
  const onA = await realtimeClient(A.url, token);
  const subA = await subscribeProfile(onA, me.id, userEmail);
  const revokedAt = performance.now();
  const out = await fetch(`${B.url}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  if (out.status !== 204) throw new Error(`logout on B: ${out.status}`);
  await subA.until(() => subA.closed.length > 0, 'channel on A closed after revocation on B');
  const revokeMs = performance.now() - revokedAt;
  for (const c of [onC, throughNginx, onA]) await c.removeAllChannels();

  console.log(`three Hallpass instances behind nginx (${spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim()}) on one PostgreSQL; full sign-ins (send, code by SMTP, verify, read profile) through nginx at concurrency ${concurrency}, up to ${perRun} or ${maxSeconds}s`);
  console.log('instances | sign-ins/s | p50 ms | p99 ms | failed | CPU ms per sign-in: hallpass (all) | nginx | PostgreSQL | load generator + SMTP');
  for (const x of results) {
    console.log(
      `${String(x.n).padStart(9)} | ${fmt(x.r.perSecond).padStart(10)} | ${fmt(x.r.p50).padStart(6)} | ${fmt(x.r.p99).padStart(6)} | ${String(x.r.failed).padStart(6)} | ${fmt(x.hallpassCpu, 2).padStart(34)} | ${fmt(x.nginxCpu, 2).padStart(5)} | ${fmt(x.pgCpu, 2).padStart(10)} | ${fmt(x.loadCpu, 2).padStart(21)}`,
    );
  }
  const [one, three] = results as [typeof results[0], typeof results[0]];
  console.log(`adding instances: ${fmt(three.hallpassCpu - one.hallpassCpu, 2)} Hallpass CPU ms and ${fmt(three.pgCpu - one.pgCpu, 2)} PostgreSQL CPU ms more per sign-in with 3 than with 1 (smaller batches, three listeners, three outbox pollers)`);
  console.log(`send limit across instances (same address on A, B, C): ${limitStatuses.join(', ')}`);
  console.log(`profile change on A reached the subscriber on C after ${fmt(aToC)} ms; the subscriber through nginx (WebSocket upgrade) got it too`);
  console.log(`logout on B closed the channel on A after ${fmt(revokeMs)} ms: "${subA.closed[0]}"`);
  if (one.r.failed || three.r.failed) process.exitCode = 1;
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await sink.close();
  await database.drop();
  rmSync(dataDir, { recursive: true, force: true });
}
