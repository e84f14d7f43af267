import { getRequestListener } from '@hono/node-server';
import { coreMigrationsDir, loadMigrations, migrate, openDb, type Db, type Migration } from '@hallpass/db';
import { pino, type Logger } from 'pino';
import { createApp, type AppState } from './app.ts';
import type { Config } from './config/config.ts';
import { systemClock, type Clock, type Deps } from './deps.ts';
import { startOutboxWorker, type OutboxWorker, type OutboxWorkerOptions } from './mail/outbox.ts';
import { isLoopbackHost } from './http/client-ip.ts';
import { createDevMailboxTransport, createSmtpTransport, type MailTransport } from './mail/transports.ts';
import { deriveServerKeys } from './shared/crypto.ts';
import { tightenDataDir } from './shared/data-dir.ts';
import { createChannel, createSignal } from './shared/signal.ts';
import { loadSecrets } from './sessions/signing-keys.ts';
import { createPasswordlessBatches } from './passwordless/passwordless.service.ts';
import { startRealtime, type RealtimeServer } from './realtime/realtime.server.ts';
import { createMetrics, type Metrics } from './metrics/metrics.ts';
import { outboxBacklog } from './mail/outbox.repository.ts';
import { listen } from './http/listener.ts';
import { grpcPathPrefix, scalekitGrpcHandler } from './scalekit/scalekit.grpc.ts';

/** Every feature's SQL, in the order the numbers give. */
export const migrationDirs = [
  coreMigrationsDir,
  ...['profiles', 'sessions', 'passwordless', 'mail', 'realtime', 'rest', 'scalekit', 'backup'].map((f) => new URL(`./${f}/migrations`, import.meta.url).pathname),
];

/**
 * Hallpass's migrations and, when configured, the app's own. The two are numbered apart (the app's
 * are recorded with source `app`), so neither can take the other's numbers.
 */
export function loadAllMigrations(appMigrationsDir?: string): Migration[] {
  return [...loadMigrations(migrationDirs, 'hallpass'), ...(appMigrationsDir ? loadMigrations([appMigrationsDir], 'app') : [])];
}

/** Applies Hallpass's migrations, then the app's. */
export function runMigrations(db: Db, appMigrationsDir?: string): Promise<string[]> {
  return migrate(db, loadAllMigrations(appMigrationsDir));
}

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    // Belt and braces: no field of these names is ever written, wherever it appears.
    redact: {
      paths: ['code', '*.code', 'token', '*.token', 'linkToken', '*.linkToken', 'link_token', 'refreshToken', 'accessToken', 'secret', 'headers.cookie', 'headers.authorization'],
      censor: '[redacted]',
    },
  });
}

export interface DepsOverrides {
  db?: Db;
  log?: Logger;
  mailer?: MailTransport;
  clock?: Clock;
  /** Where dev-mailbox lines go. @default console.log */
  print?: (line: string) => void;
  metrics?: Metrics;
}

/** Builds the dependencies once: database, secrets, keys, mail transport, logger, clock. */
export async function createDeps(config: Readonly<Config>, overrides: DepsOverrides = {}): Promise<Deps> {
  const log = overrides.log ?? createLogger(config);
  // Before the database opens, anything group- or world-accessible was left so since the last start
  // (or by hand): worth a warning. After it opens, PGlite's own chmods are fixed silently.
  const leftOpen = tightenDataDir(config.dataDir);
  if (leftOpen.length) {
    log.warn({ dataDir: config.dataDir, count: leftOpen.length, examples: leftOpen.slice(0, 5) }, 'data dir had group- or world-accessible files; made them private to this user');
  }
  const db =
    overrides.db ??
    (await openDb({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.databasePoolSize,
      pgliteThread: config.pgliteThread,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      onListenerError: (err) => log.warn({ err: err.message }, 'database listener connection lost; reconnecting'),
    }));
  const secrets = await loadSecrets({ dataDir: config.dataDir, secret: config.secret, jwtPrivateKey: config.jwtPrivateKey });
  tightenDataDir(config.dataDir);
  const print = overrides.print ?? ((line: string) => console.log(line));
  const mailer =
    overrides.mailer ??
    (config.mail.smtpUrl ? createSmtpTransport(config.mail.smtpUrl, config.mail.from) : createDevMailboxTransport(db, print));
  const clock = overrides.clock ?? systemClock;
  const metrics = overrides.metrics ?? createMetrics();
  metrics.addSources({ outbox: () => outboxBacklog(db), ...(db.poolStats ? { pool: () => db.poolStats!() } : {}) });
  return {
    config,
    db,
    log,
    keys: deriveServerKeys(secrets.secret),
    signing: secrets.signing,
    mailer,
    mailQueued: createSignal(),
    mailHandoff: createChannel(),
    realtimeWritten: createSignal(),
    clock,
    passwordlessBatches: createPasswordlessBatches({ config, db, clock }),
    metrics,
  };
}

export interface RunningServer {
  url: string;
  deps: Deps;
  outbox: OutboxWorker;
  realtime: RealtimeServer;
  /** Graceful shutdown; see `startServer`. Calling it again returns the same promise. */
  close(options?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  /** How long requests in flight may take to finish before their connections are cut. @default 8000 */
  graceMs?: number;
}

/**
 * Migrates, starts the outbox worker and listens. `config.port` 0 picks a free port (tests).
 *
 * `close` is the graceful shutdown (SIGTERM): /readyz turns 503 at once; the listener closes, so new
 * connections go to other instances; realtime sockets are closed with 1001 "going away", which makes
 * supabase-js and @hallpass/client reconnect (through the balancer, to another instance); requests in
 * flight finish (up to `graceMs`), and idle keep-alive connections
 * are closed as they become idle; the outbox worker finishes what is on the wire and hands the mail
 * it holds back to the others; then the database closes.
 */
export async function startServer(
  config: Readonly<Config>,
  overrides: DepsOverrides & { outbox?: OutboxWorkerOptions } = {},
): Promise<RunningServer> {
  const deps = await createDeps(config, overrides);
  if (config.mail.devMailbox && !isLoopbackHost(config.host)) {
    deps.log.warn({ host: config.host }, 'DEV_MAILBOX is on and the server listens beyond loopback: the mailbox answers only requests from this machine, but do not run it like this on a shared network');
  }
  const state: AppState = { ready: false };
  await runMigrations(deps.db, config.appMigrationsDir);
  tightenDataDir(config.dataDir); // migrations make PGlite write files too
  state.ready = true;
  const outbox = await startOutboxWorker(deps, overrides.outbox);
  const app = createApp(deps, state);
  // One port: the app over HTTP/1.1 and HTTP/2, and Scalekit's gRPC service for its SDK (HTTP/2).
  const appListener = getRequestListener(app.fetch, { hostname: config.host });
  const grpc = scalekitGrpcHandler(deps);
  const listener = await listen({ host: config.host, port: config.port, tls: config.tls }, (req, res) =>
    req.url?.startsWith(grpcPathPrefix) ? grpc(req, res) : appListener(req as never, res as never),
  );
  const realtime = await startRealtime(deps, listener.upgradeServer);
  let closing: Promise<void> | null = null;
  const shutdown = async ({ graceMs = 8000 }: CloseOptions) => {
    const started = Date.now();
    state.ready = false;
    const drained = listener.stopAccepting();
    // Idle connections close now (a client must not reuse one for a new request), and connections
    // that finish their last request while we wait close as soon as they idle (HTTP/2 sessions get
    // GOAWAY and end after their streams).
    listener.closeIdleConnections();
    const sweep = setInterval(() => listener.closeIdleConnections(), 50);
    await realtime.close();
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<'cut'>((resolve) => (timer = setTimeout(() => resolve('cut'), graceMs)));
    if ((await Promise.race([drained, cut])) === 'cut') {
      deps.log.warn({ graceMs }, 'requests still running at the end of the grace period; closing their connections');
      listener.closeAllConnections();
      await drained;
    }
    clearTimeout(timer);
    clearInterval(sweep);
    await outbox.stop();
    await deps.mailer.close();
    if (!overrides.db) await deps.db.close();
    deps.log.info({ ms: Date.now() - started }, 'shut down');
  };
  return {
    url: listener.url,
    deps,
    outbox,
    realtime,
    close(options = {}) {
      closing ??= shutdown(options);
      return closing;
    },
  };
}

/**
 * Shuts `server` down gracefully on SIGTERM or SIGINT and exits 0; exits 1 if that takes longer than
 * `deadlineMs` (orchestrators send SIGKILL after 10 s by default, so we stay under it). A second
 * signal exits at once.
 */
export function exitOnSignals(server: RunningServer, deadlineMs = 9500): void {
  const stop = (signal: NodeJS.Signals) => {
    server.deps.log.info({ signal }, 'shutting down');
    setTimeout(() => {
      server.deps.log.error({ deadlineMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, deadlineMs).unref();
    process.once(signal, () => process.exit(1));
    server.close({ graceMs: Math.max(1000, deadlineMs - 2500) }).then(
      () => process.exit(0),
      (err: unknown) => {
        server.deps.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
