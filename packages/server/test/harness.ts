import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite, openPostgres, type Db } from '@hallpass/db';
import { createTestDatabase, testBackend } from '@hallpass/db/testing';
import { pino, type Logger } from 'pino';
import { loadConfig, type Env } from '../src/config/config.ts';
import type { Clock } from '../src/deps.ts';
import type { MailTransport } from '../src/mail/transports.ts';
import type { OutboxWorkerOptions } from '../src/mail/outbox.ts';
import { startServer, type RunningServer } from '../src/server.ts';

export interface TestServerOptions {
  env?: Env;
  clock?: Clock;
  mailer?: MailTransport;
  outbox?: OutboxWorkerOptions;
  log?: Logger;
  /** Runs on the fresh database before the server starts (and migrates) on it. */
  prepare?: (db: Db) => Promise<void>;
}

export interface TestServer extends RunningServer {
  db: Db;
  dataDir: string;
  /** The postgres backend: the URL of this server's database. */
  databaseUrl: string | undefined;
  /** A cookie-keeping client that behaves like one browser (sends Origin on writes). */
  browser(origin?: string): TestBrowser;
  /** Delivers queued mail now and returns the newest dev-mailbox message to `to`. */
  latestMail(to: string): Promise<MailboxMessage>;
  /**
   * Stops this server and starts another on the same database and data dir (secrets, keys);
   * `whileStopped` runs in between, with the database closed.
   */
  restart(options?: TestServerOptions, whileStopped?: () => Promise<void>): Promise<TestServer>;
  stop(): Promise<void>;
}

export interface MailboxMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  code: string | null;
  link: string | null;
  sentAt: string;
}

/** A fake clock tests move by hand; starts at the real time. */
export function manualClock(start = new Date()): Clock & { advance(seconds: number): void } {
  let t = start.getTime();
  return { now: () => new Date(t), advance: (s) => void (t += s * 1000) };
}

/**
 * A real Hallpass server on a free port, over its own fresh database (PGlite in a temp dir, or a new
 * database on the test PostgreSQL server), with the dev mailbox as its mail transport unless a
 * mailer is given.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-test-'));
  let db: Db;
  let drop: () => Promise<void>;
  let reopen: () => Promise<Db>;
  let databaseUrl: string | undefined;
  if (testBackend() === 'pglite') {
    db = await openPglite(join(dataDir, 'data'));
    drop = () => db.close();
    reopen = () => openPglite(join(dataDir, 'data'));
  } else {
    // The pool's statement_timeout is a connection setting, so the test database is opened with it,
    // when a test sets one (none otherwise: a loaded test machine must not cut statements short).
    const timeout = Number(options.env?.DATABASE_STATEMENT_TIMEOUT_MS ?? 0);
    const t = await createTestDatabase({ statementTimeoutMs: timeout });
    db = t.db;
    drop = t.drop;
    databaseUrl = t.url;
    reopen = () => openPostgres({ connectionString: t.url!, max: 10, statementTimeoutMs: timeout });
  }
  await options.prepare?.(db);
  return boot(options, dataDir, databaseUrl, db, drop, reopen);
}

async function boot(
  options: TestServerOptions,
  dataDir: string,
  databaseUrl: string | undefined,
  db: Db,
  drop: () => Promise<void>,
  reopen: () => Promise<Db>,
): Promise<TestServer> {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HALLPASS_DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    DEV_MAILBOX: 'true',
    // Every test client comes from 127.0.0.1, as a whole office behind one NAT would: the per-address
    // realtime limits are raised here, and the flood tests set the ones they test.
    REALTIME_MAX_SOCKETS_PER_IP: '100000',
    REALTIME_JOINS_PER_SECOND_PER_IP: '100000',
    ...options.env,
  });
  const running = await startServer(config, {
    db,
    log: options.log ?? pino({ level: 'silent' }),
    print: () => {},
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.mailer ? { mailer: options.mailer } : {}),
    ...(options.outbox ? { outbox: options.outbox } : {}),
  });
  // Links in mail point at the configured base URL; tests talk to the real port.
  const base = running.url;
  const origin = config.baseUrl;
  const server: TestServer = {
    ...running,
    db,
    dataDir,
    databaseUrl,
    browser: (o = origin) => new TestBrowser(base, o),
    async latestMail(to) {
      await running.outbox.drain();
      const res = await fetch(`${base}/dev/mailbox/messages?to=${encodeURIComponent(to)}`);
      const { messages } = (await res.json()) as { messages: MailboxMessage[] };
      if (!messages[0]) throw new Error(`no mail to ${to}`);
      return messages[0];
    },
    async restart(next = options, whileStopped) {
      await running.close();
      await db.close();
      await whileStopped?.();
      return boot(next, dataDir, databaseUrl, await reopen(), drop, reopen);
    },
    async stop() {
      await running.close();
      await db.close();
      await drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

export interface TestResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One browser: keeps cookies per name, sends Origin on writes as browsers do. */
export class TestBrowser {
  readonly cookies = new Map<string, string>();
  constructor(
    readonly base: string,
    readonly origin: string,
  ) {}

  async request<T = any>(method: string, path: string, init: { json?: unknown; body?: string; headers?: Record<string, string> } = {}): Promise<TestResponse<T>> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    // Browsers send Origin on writes; a test passes `origin: undefined` to leave it out.
    if (method !== 'GET' && method !== 'HEAD' && !('origin' in headers)) headers.origin = this.origin;
    if (headers.origin === undefined) delete headers.origin;
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] ??= 'application/json';
    }
    const url = path.startsWith('http') ? path.replace(/^https?:\/\/[^/]+/, this.base) : this.base + path;
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    let parsed: unknown = text;
    if (res.headers.get('content-type')?.includes('application/json')) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  get = <T = any>(path: string, headers?: Record<string, string>) => this.request<T>('GET', path, headers ? { headers } : {});
  post = <T = any>(path: string, json?: unknown, headers?: Record<string, string>) =>
    this.request<T>('POST', path, { ...(json !== undefined ? { json } : {}), ...(headers ? { headers } : {}) });
  patch = <T = any>(path: string, json?: unknown) => this.request<T>('PATCH', path, { json });
}

/** Runs the whole code sign-in for `email` in `browser`; returns the verify response body. */
export async function signInWithCode(server: TestServer, browser: TestBrowser, email: string) {
  const sent = await browser.post('/api/auth/passwordless/send', { email });
  if (sent.status !== 200) throw new Error(`send failed: ${sent.status} ${sent.text}`);
  const mail = await server.latestMail(email);
  const verified = await browser.post('/api/auth/passwordless/verify', { authRequestId: sent.body.authRequestId, code: mail.code });
  if (verified.status !== 200) throw new Error(`verify failed: ${verified.status} ${verified.text}`);
  return verified.body as { user: { id: string; email: string }; state: string | null };
}

export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}@example.com`;
}
