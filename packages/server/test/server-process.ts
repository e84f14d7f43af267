import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '@hallpass/db/testing';
import { startSmtpSink } from './smtp-sink.ts';

const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  s.close();
  return port;
}

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** What the process printed so far (stdout). */
  output(): string;
  /** SIGTERM and wait for the exit; resolves with the exit code and how long it took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
}

/**
 * `hallpass serve` in a child process of its own on 127.0.0.1 (a free port unless `port` is given),
 * resolved once it listens. Its stderr goes to ours; its stdout is kept.
 */
export async function startServerProcess(env: Record<string, string>, port?: number): Promise<ServerProcess> {
  const p = port ?? (await freePort());
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), '--import', 'tsx', mainTs, 'serve'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(p), APP_BASE_URL: `http://127.0.0.1:${p}`, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!out.includes('listening')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${out}`);
    await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
  }
  return {
    url: `http://127.0.0.1:${p}`,
    port: p,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      const started = performance.now();
      if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, ms: 0 };
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return { code, ms: performance.now() - started };
    },
  };
}

/**
 * What server processes on the PostgreSQL backend share: a fresh database, an SMTP sink and a data
 * dir, and the env that points them there (`extra` added). Undone by the functions pushed onto `cleanup`.
 */
export async function processFixture(cleanup: Array<() => Promise<unknown>>, extra: Record<string, string> = {}) {
  const t: TestDatabase = await createTestDatabase();
  cleanup.push(t.drop);
  const sink = await startSmtpSink();
  cleanup.push(sink.close);
  const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-proc-'));
  cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  const env = {
    DATABASE_URL: t.url!,
    SMTP_URL: sink.url,
    DEV_MAILBOX: 'false',
    HALLPASS_SECRET: 'a-test-secret-that-is-long-enough-for-hallpass',
    HALLPASS_DATA_DIR: dataDir,
    RATE_LIMIT_IP_PER_10_MINUTES: '100000',
    ...extra,
  };
  return { t, sink, env };
}
