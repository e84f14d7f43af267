import { getRequestListener } from '@hono/node-server';
import { coreMigrationsDir, loadMigrations, migrate, openDb, type Db } from '@hallpass/db';
import { pino, type Logger } from 'pino';
import { createApp, type AppState } from './app.ts';
import type { Config } from './config/config.ts';
import { systemClock, type Clock, type Deps } from './deps.ts';
import { startOutboxWorker, type OutboxWorker, type OutboxWorkerOptions } from './mail/outbox.ts';
import { isLoopbackHost } from './http/client-ip.ts';
import { createDevMailboxTransport, createSmtpTransport, type MailTransport } from './mail/transports.ts';
import { deriveServerKeys } from './shared/crypto.ts';
import { createChannel, createSignal } from './shared/signal.ts';
import { loadSecrets } from './sessions/signing-keys.ts';
import { createPasswordlessBatches } from './passwordless/passwordless.service.ts';
import { startRealtime, type RealtimeServer } from './realtime/realtime.server.ts';
import { listen } from './http/listener.ts';
import { grpcPathPrefix, scalekitGrpcHandler } from './scalekit/scalekit.grpc.ts';

/** Every feature's SQL, in the order the numbers give. */
export const migrationDirs = [
  coreMigrationsDir,
  ...['profiles', 'sessions', 'passwordless', 'mail', 'realtime', 'rest', 'scalekit'].map((f) => new URL(`./${f}/migrations`, import.meta.url).pathname),
];

/** Applies Hallpass's migrations and, when configured, the app's own (numbers 0020 and up). */
export function runMigrations(db: Db, appMigrationsDir?: string): Promise<string[]> {
  return migrate(db, loadMigrations(appMigrationsDir ? [...migrationDirs, appMigrationsDir] : migrationDirs));
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
}

/** Builds the dependencies once: database, secrets, keys, mail transport, logger, clock. */
export async function createDeps(config: Readonly<Config>, overrides: DepsOverrides = {}): Promise<Deps> {
  const log = overrides.log ?? createLogger(config);
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
  const print = overrides.print ?? ((line: string) => console.log(line));
  const mailer =
    overrides.mailer ??
    (config.mail.smtpUrl ? createSmtpTransport(config.mail.smtpUrl) : createDevMailboxTransport(db, print));
  const clock = overrides.clock ?? systemClock;
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
  };
}

export interface RunningServer {
  url: string;
  deps: Deps;
  outbox: OutboxWorker;
  realtime: RealtimeServer;
  close(): Promise<void>;
}

/**
 * Migrates, starts the outbox worker and listens. `config.port` 0 picks a free port (tests).
 * `close` stops accepting, lets the worker finish its round, and closes the database.
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
  return {
    url: listener.url,
    deps,
    outbox,
    realtime,
    async close() {
      await realtime.close();
      await listener.close();
      await outbox.stop();
      await deps.mailer.close();
      if (!overrides.db) await deps.db.close();
    },
  };
}
