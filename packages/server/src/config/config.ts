import { resolve } from 'node:path';
import { Cron } from 'croner';
import { z } from 'zod';
import { passwordlessTypes } from '@hallpass/protocol';
import { isLoopbackHost, parseTrustProxy, type TrustProxy } from '../http/client-ip.ts';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');
const list = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Every environment variable Hallpass reads, with its default. The CLI's `main.ts` (packages/cli) is the only reader of env. */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().default('127.0.0.1'),
  PORT: int(0, 65535).default(3000),
  APP_BASE_URL: z.url().optional(),
  HALLPASS_DATA_DIR: z.string().default('./.hallpass'),
  DATABASE_URL: z.url().optional(),
  DATABASE_POOL_SIZE: int(1, 500).default(20),
  PGLITE_THREAD: z.enum(['worker', 'main']).default('worker'),
  DATABASE_STATEMENT_TIMEOUT_MS: int(0, 3_600_000).default(5000),
  SMTP_URL: z.url().optional(),
  MAIL_FROM: z.string().default('Hallpass <no-reply@hallpass.localhost>'),
  MAIL_LEASE_SECONDS: int(5, 3600).default(60),
  HALLPASS_SECRET: z.string().min(32, 'HALLPASS_SECRET must be at least 32 characters').optional(),
  HALLPASS_JWT_PRIVATE_KEY: z.string().optional(),
  HALLPASS_ISSUER: z.string().optional(),
  PASSWORDLESS_TYPE: z.enum(passwordlessTypes).default('LINK_OTP'),
  PASSWORDLESS_EXPIRES_IN: int(60, 3600).default(300),
  PASSWORDLESS_ENFORCE_SAME_BROWSER: bool.default(false),
  OTP_WRONG_CODES_PER_ADDRESS_PER_DAY: int(1, 10_000).default(20),
  ACCESS_TOKEN_TTL: int(60, 86_400).default(900),
  REFRESH_TOKEN_TTL: int(3600, 365 * 86_400).default(30 * 86_400),
  RATE_LIMIT_EMAIL_PER_MINUTE: int(1, 10_000).default(2),
  RATE_LIMIT_EMAIL_PER_HOUR: int(1, 100_000).default(10),
  RATE_LIMIT_IP_PER_10_MINUTES: int(1, 1_000_000).default(30),
  RATE_LIMIT_CLIENT_PER_10_MINUTES: int(1, 10_000_000).default(10_000),
  API_CLIENT_TOKEN_TTL: int(60, 86_400).default(3600),
  TLS_CERT_FILE: z.string().optional(),
  APP_JWT_SECRET: z.string().min(32, 'APP_JWT_SECRET must be at least 32 characters').optional(),
  TLS_KEY_FILE: z.string().optional(),
  CORS_ORIGINS: list.default([]),
  REDIRECT_ALLOW_LIST: list.default([]),
  TRUST_PROXY: z.string().optional(),
  DEV_MAILBOX: bool.optional(),
  APP_STATIC_DIR: z.string().optional(),
  APP_MIGRATIONS_DIR: z.string().optional(),
  REALTIME_RETENTION_SECONDS: int(60, 30 * 86_400).default(86_400),
  REALTIME_PRUNE_INTERVAL_SECONDS: int(1, 86_400).default(300),
  REALTIME_SESSION_CHECK_SECONDS: int(1, 3600).default(60),
  REALTIME_BROADCASTS_PER_SECOND: int(1, 10_000).default(20),
  REALTIME_SERVER_MESSAGES_PER_SECOND: int(1, 10_000_000).default(1000),
  REALTIME_MAX_SOCKETS_PER_IP: int(1, 1_000_000).default(100),
  REALTIME_JOINS_PER_SECOND_PER_IP: int(1, 1_000_000).default(20),
  REALTIME_JOIN_TIMEOUT_SECONDS: int(1, 3600).default(15),
  REALTIME_MAX_MESSAGE_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  TENANT_HOSTS: list.default([]),
  REST_SCHEMAS: list.default(['public']),
  BACKUP_DIR: z.string().optional(),
  BACKUP_KEEP_DAILY: int(1, 3650).default(7),
  BACKUP_KEEP_WEEKLY: int(0, 520).default(4),
  BACKUP_SCHEDULE: z.string().optional(),
  BACKUP_PG_BIN_DIR: z.string().optional(),
  AUDIT_EXPORT_DIR: z.string().optional(),
  METRICS_ENABLED: bool.default(true),
  METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional(),
  REST_MAX_ROWS: int(1, 1_000_000).default(1000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = Record<string, string | undefined>;

export interface Config {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  /** The public origin of this server: links in emails point here. */
  baseUrl: string;
  /** Secure cookies and `__Host-` names when the base URL is https. */
  secureCookies: boolean;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** Where the embedded database runs: its own worker thread (two cores) or the main thread. */
  pgliteThread: 'worker' | 'main';
  secret: string | undefined;
  jwtPrivateKey: string | undefined;
  issuer: string;
  /** `leaseSeconds`: how long a claimed outbox row waits before another worker may take it again. */
  mail: { smtpUrl: string | undefined; from: string; devMailbox: boolean; leaseSeconds: number };
  passwordless: {
    type: (typeof passwordlessTypes)[number];
    expiresIn: number;
    enforceSameBrowser: boolean;
    maxAttempts: number;
    attemptWindowSeconds: number;
    /**
     * Wrong codes one address may try across all its requests per `periodSeconds`, refilling evenly;
     * past it its codes are refused (links keep working). @default { limit: 20, periodSeconds: 86400 }
     */
    addressCodeBudget: { limit: number; periodSeconds: number };
  };
  sessions: { accessTokenTtl: number; refreshTokenTtl: number; refreshReuseGraceSeconds: number };
  /** `clientPer10Minutes`: sends per API client (Scalekit API), which replaces the per-IP rule there. */
  rateLimits: { emailPerMinute: number; emailPerHour: number; ipPer10Minutes: number; clientPer10Minutes: number };
  /** Seconds an API client's access token from /oauth/token lives. */
  apiClientTokenTtl: number;
  /**
   * HS256 secret the app's own backend signs user tokens with (Supabase's JWT secret): the data API
   * accepts such tokens as role authenticated. Unset: refused.
   */
  appJwtSecret: string | undefined;
  /** PEM files: when set, the port speaks https (HTTP/1.1 and HTTP/2 by ALPN) instead of http. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** Origins allowed to make credentialed cross-origin calls (CORS) and cookie-authenticated writes. */
  allowedOrigins: string[];
  /** Where a magic link may send the browser after sign-in: exact origins or URL prefixes. */
  redirectAllowList: string[];
  /** Which proxies in front of us may report the client's address (X-Forwarded-For). @default false */
  trustProxy: TrustProxy;
  logLevel: string;
  /** A built browser app to serve at `/` instead of the built-in page (its index.html and assets). */
  appStaticDir: string | undefined;
  /** The app's own SQL migrations (numbers 0020+), applied after Hallpass's. */
  appMigrationsDir: string | undefined;
  /** Realtime: how long change and broadcast events stay replayable, and the background schedules. */
  realtime: {
    retentionSeconds: number;
    pruneIntervalSeconds: number;
    sessionCheckSeconds: number;
    /** Client broadcasts one socket may send per second (bursts of twice that); beyond, refused. */
    broadcastsPerSecond: number;
    /**
     * The instance's budget for client broadcasts, in messages it delivers per second (bursts of twice
     * that): a broadcast to a topic with N subscribers here costs N. Beyond, broadcasts are refused.
     */
    serverMessagesPerSecond: number;
    /** Open sockets one client address may hold; more upgrades are refused with 429. */
    maxSocketsPerIp: number;
    /** Channel joins per second from one client address (bursts of twice that); beyond, refused. */
    joinsPerSecondPerIp: number;
    /** A socket that has joined no channel this long after opening is closed. */
    joinTimeoutSeconds: number;
    /** The largest WebSocket message taken; a bigger one closes the socket (1009). */
    maxMessageBytes: number;
  };
  /** Host name (lower-case, no port) -> tenant slug: sign-in on that host uses that tenant. */
  tenantHosts: Readonly<Record<string, string>>;
  /** Schemas whose tables `/rest/v1` serves; the first is the default. @default ['public'] */
  restSchemas: readonly string[];
  backup: {
    /** Where backups go (mode 0700). @default `<dataDir>/backups` */
    dir: string;
    /** Newest backup of each of the last N days that have one. @default 7 */
    keepDaily: number;
    /** Newest backup of each of the last N ISO weeks that have one. @default 4 */
    keepWeekly: number;
    /** A cron expression (UTC): the server takes, verifies and prunes backups on it. */
    schedule: string | undefined;
    /** Where `pg_dump` and `pg_restore` are, when not on PATH (e.g. /usr/lib/postgresql/16/bin). */
    pgBinDir: string | undefined;
    /** Where the audit log's daily JSON-lines files go. @default `<backup dir>/audit` */
    auditDir: string;
  };
  /**
   * Who may read `GET /metrics`: `token` (METRICS_TOKEN set: a matching `Authorization: Bearer`),
   * `open` (no token, bound to loopback and no proxy in front: only this machine can reach it), or
   * `off` (METRICS_ENABLED=false, or a public or proxied server without a token).
   */
  metrics: { access: 'open' | 'token' | 'off'; token: string | undefined };
  /** The most rows one `/rest/v1` read or rpc answers (PostgREST's max_rows). @default 1000 */
  restMaxRows: number;
  /**
   * statement_timeout of every connection of the server's PostgreSQL pool, data API requests
   * included; 0 turns it off. PGlite has no statement timer. @default 5000
   */
  databaseStatementTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Builds the one config object from environment variables, reporting every problem at once.
 * @example const config = loadConfig(process.env)
 */
export function loadConfig(env: Env): Readonly<Config> {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const baseUrl = new URL(e.APP_BASE_URL ?? `http://localhost:${e.PORT}`).origin;
  const production = e.NODE_ENV === 'production';
  const devMailbox = e.DEV_MAILBOX ?? (!e.SMTP_URL && !production);
  if (devMailbox && production) problems.push('DEV_MAILBOX cannot be on in production: it shows sign-in codes');
  // It answers only loopback callers anyway; on by default it must not look reachable from a network.
  if (devMailbox && e.DEV_MAILBOX === undefined && !isLoopbackHost(e.HOST)) {
    problems.push(`DEV_MAILBOX: the dev mailbox shows sign-in codes; with HOST=${e.HOST} set SMTP_URL, or DEV_MAILBOX=on to keep it (loopback callers only)`);
  }
  const trustProxy = parseTrustProxy(e.TRUST_PROXY);
  if (trustProxy && 'problems' in trustProxy) problems.push(...trustProxy.problems);
  if (production && !e.SMTP_URL) problems.push('SMTP_URL is required in production');
  if (production && !e.HALLPASS_SECRET) problems.push('HALLPASS_SECRET is required in production');
  if (production && !baseUrl.startsWith('https://')) problems.push('APP_BASE_URL must be https in production');
  if (Boolean(e.TLS_CERT_FILE) !== Boolean(e.TLS_KEY_FILE)) problems.push('TLS_CERT_FILE and TLS_KEY_FILE go together');
  for (const origin of e.CORS_ORIGINS) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) problems.push(`CORS_ORIGINS: ${origin} is not an origin`);
  }
  for (const target of e.REDIRECT_ALLOW_LIST) {
    const url = URL.canParse(target) ? new URL(target) : null;
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.username || url.password || url.search || url.hash) {
      problems.push(`REDIRECT_ALLOW_LIST: ${target} is not an http(s) origin or URL prefix`);
    }
  }
  const tenantHosts: Record<string, string> = {};
  for (const entry of e.TENANT_HOSTS) {
    const m = /^([a-z0-9.-]+)=([a-z0-9][a-z0-9-]{0,62})$/i.exec(entry);
    if (m) tenantHosts[m[1]!.toLowerCase()] = m[2]!.toLowerCase();
    else problems.push(`TENANT_HOSTS: ${entry} is not host=tenant-slug`);
  }
  for (const schema of e.REST_SCHEMAS) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema) || ['auth', 'hallpass', 'pg_catalog', 'information_schema'].includes(schema)) {
      problems.push(`REST_SCHEMAS: ${schema} cannot be exposed`);
    }
  }
  if (e.BACKUP_SCHEDULE) {
    try {
      new Cron(e.BACKUP_SCHEDULE, { timezone: 'UTC', paused: true }).stop();
    } catch (err) {
      problems.push(`BACKUP_SCHEDULE: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const dataDir = resolve(e.HALLPASS_DATA_DIR);
  const backupDir = resolve(e.BACKUP_DIR ?? `${dataDir}/backups`);

  return Object.freeze({
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    baseUrl,
    secureCookies: baseUrl.startsWith('https://'),
    dataDir,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    pgliteThread: e.PGLITE_THREAD,
    secret: e.HALLPASS_SECRET,
    jwtPrivateKey: e.HALLPASS_JWT_PRIVATE_KEY,
    issuer: e.HALLPASS_ISSUER ?? `${baseUrl}/auth/v1`,
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM, devMailbox, leaseSeconds: e.MAIL_LEASE_SECONDS },
    passwordless: {
      type: e.PASSWORDLESS_TYPE,
      expiresIn: e.PASSWORDLESS_EXPIRES_IN,
      enforceSameBrowser: e.PASSWORDLESS_ENFORCE_SAME_BROWSER,
      maxAttempts: 5,
      attemptWindowSeconds: 600,
      addressCodeBudget: { limit: e.OTP_WRONG_CODES_PER_ADDRESS_PER_DAY, periodSeconds: 86_400 },
    },
    sessions: { accessTokenTtl: e.ACCESS_TOKEN_TTL, refreshTokenTtl: e.REFRESH_TOKEN_TTL, refreshReuseGraceSeconds: 10 },
    rateLimits: {
      emailPerMinute: e.RATE_LIMIT_EMAIL_PER_MINUTE,
      emailPerHour: e.RATE_LIMIT_EMAIL_PER_HOUR,
      ipPer10Minutes: e.RATE_LIMIT_IP_PER_10_MINUTES,
      clientPer10Minutes: e.RATE_LIMIT_CLIENT_PER_10_MINUTES,
    },
    apiClientTokenTtl: e.API_CLIENT_TOKEN_TTL,
    appJwtSecret: e.APP_JWT_SECRET,
    tls: e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { certFile: resolve(e.TLS_CERT_FILE), keyFile: resolve(e.TLS_KEY_FILE) } : undefined,
    allowedOrigins: [baseUrl, ...e.CORS_ORIGINS],
    redirectAllowList: [baseUrl, ...e.REDIRECT_ALLOW_LIST],
    trustProxy: trustProxy as TrustProxy,
    logLevel: e.LOG_LEVEL,
    appStaticDir: e.APP_STATIC_DIR ? resolve(e.APP_STATIC_DIR) : undefined,
    appMigrationsDir: e.APP_MIGRATIONS_DIR ? resolve(e.APP_MIGRATIONS_DIR) : undefined,
    realtime: {
      retentionSeconds: e.REALTIME_RETENTION_SECONDS,
      pruneIntervalSeconds: e.REALTIME_PRUNE_INTERVAL_SECONDS,
      sessionCheckSeconds: e.REALTIME_SESSION_CHECK_SECONDS,
      broadcastsPerSecond: e.REALTIME_BROADCASTS_PER_SECOND,
      serverMessagesPerSecond: e.REALTIME_SERVER_MESSAGES_PER_SECOND,
      maxSocketsPerIp: e.REALTIME_MAX_SOCKETS_PER_IP,
      joinsPerSecondPerIp: e.REALTIME_JOINS_PER_SECOND_PER_IP,
      joinTimeoutSeconds: e.REALTIME_JOIN_TIMEOUT_SECONDS,
      maxMessageBytes: e.REALTIME_MAX_MESSAGE_BYTES,
    },
    tenantHosts: Object.freeze(tenantHosts),
    restSchemas: Object.freeze(e.REST_SCHEMAS.length ? e.REST_SCHEMAS : ['public']),
    backup: Object.freeze({
      dir: backupDir,
      keepDaily: e.BACKUP_KEEP_DAILY,
      keepWeekly: e.BACKUP_KEEP_WEEKLY,
      schedule: e.BACKUP_SCHEDULE,
      pgBinDir: e.BACKUP_PG_BIN_DIR ? resolve(e.BACKUP_PG_BIN_DIR) : undefined,
      auditDir: resolve(e.AUDIT_EXPORT_DIR ?? `${backupDir}/audit`),
    }),
    metrics: { access: metricsAccess(e.METRICS_ENABLED, e.METRICS_TOKEN, e.HOST, trustProxy !== false), token: e.METRICS_TOKEN },
    restMaxRows: e.REST_MAX_ROWS,
    databaseStatementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
  });
}

/**
 * The /metrics rule. Metrics name no user, but they tell an outsider how busy the server is and how
 * its limits fire: without a token they are served only where nobody else can ask, i.e. bound to a
 * loopback address with no proxy in front (a proxy on this machine would forward the public's
 * requests from 127.0.0.1).
 */
function metricsAccess(enabled: boolean, token: string | undefined, host: string, behindProxy: boolean): 'open' | 'token' | 'off' {
  if (!enabled) return 'off';
  if (token) return 'token';
  return isLoopbackHost(host) && !behindProxy ? 'open' : 'off';
}

/** The config with secrets replaced, for printing. */
export function redactConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    secret: config.secret ? '[redacted]' : undefined,
    jwtPrivateKey: config.jwtPrivateKey ? '[redacted]' : undefined,
    metrics: { ...config.metrics, token: config.metrics.token ? '[redacted]' : undefined },
    appJwtSecret: config.appJwtSecret ? '[redacted]' : undefined,
    databaseUrl: config.databaseUrl?.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:[redacted]@'),
    mail: { ...config.mail, smtpUrl: config.mail.smtpUrl?.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:[redacted]@') },
  };
}
