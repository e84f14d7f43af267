import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '@hallpass/db';
import { isErrorCode } from '@hallpass/protocol';
import { AppError } from '../shared/errors.ts';

/** Which limit refused: the three send limits, the wrong-code limit, a socket's broadcast rate. */
export type Limiter = 'email_minute' | 'email_hour' | 'ip' | 'verify_attempts' | 'realtime_broadcast';

const limiterOf: Partial<Record<string, Limiter>> = {
  email_rate_limited_minute: 'email_minute',
  email_rate_limited_hour: 'email_hour',
  ip_rate_limited: 'ip',
  too_many_attempts: 'verify_attempts',
};

/** Figures read when Prometheus scrapes, not kept up to date on the hot path. */
export interface ScrapeSources {
  /** Mail not yet delivered (pending or being sent) and the age of the oldest, in seconds. */
  outbox?: () => Promise<{ depth: number; oldestSeconds: number }>;
  pool?: () => PoolStats;
  realtime?: () => { sockets: number; channels: number; queued: number };
}

/**
 * The instance's metrics: one prom-client Registry per instance (never the global one: tests run
 * several servers in one process). Feature code calls the one-line methods below; labels are closed
 * sets (outcome codes, limiter names, methods, statuses), never an email, id or token.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Awaits `work` and counts its outcome (`ok` or the error code) for `what`; rethrows errors. */
  outcome<T>(what: 'send' | 'verify', work: Promise<T>): Promise<T>;
  limited(limiter: Limiter): void;
  signedIn(created: boolean): void;
  sessionRefreshed(): void;
  sessionRevoked(reason: 'logout' | 'revoked_by_user' | 'refresh_token_reuse'): void;
  mailDelivery(outcome: 'sent' | 'failed' | 'expired', seconds: number): void;
  realtimeDelivered(count: number, commitToSendSeconds: number | null): void;
  restRequest(method: string, status: number, seconds: number): void;
  httpResponse(status: number): void;
  databaseUnavailable(): void;
  /** A scheduled backup run ended (startBackupScheduler's onRun). */
  backupRun(outcome: { status: 'ok' | 'failed' | 'skipped'; stage?: string }): void;
  /** Adds figures read at scrape time (the realtime server registers its own once started). */
  addSources(sources: ScrapeSources): void;
  /** The Prometheus text exposition of the process's figures and this instance's. */
  scrape(): Promise<string>;
  readonly contentType: string;
}

/**
 * The process's own figures (CPU, memory, GC, event-loop lag) are one per process however many
 * servers it runs (tests run several), and collecting them starts timers that live as long as the
 * process: one registry for them, made on first use, whose text is prepended to each instance's.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // process_* and nodejs_* under their standard names.
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 20 });
  }
  return processRegistry;
}

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const restMethods = new Set(['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS']);

/** The labelled child kept under `key`, made by `make` the first time. */
function labelled<K, V>(cache: Map<K, V>, key: K, make: () => V): V {
  let child = cache.get(key);
  if (child === undefined) {
    child = make();
    cache.set(key, child);
  }
  return child;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  const perProcess = processMetrics();
  const sources: ScrapeSources = {};
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Histogram<L>({ name, help, labelNames, buckets: latencyBuckets, registers: [registry] });

  const sends = counter('hallpass_passwordless_sends_total', 'Passwordless sends by outcome (ok or the error code).', ['outcome']);
  const verifies = counter('hallpass_passwordless_verifies_total', 'Code and link verifies by outcome (ok or the error code).', ['outcome']);
  const refusals = counter('hallpass_rate_limit_refusals_total', 'Requests refused by a limit, by limiter.', ['limiter']);
  const signIns = counter('hallpass_sign_ins_total', 'Completed sign-ins (a session was issued).');
  const signUps = counter('hallpass_sign_ups_total', 'Sign-ins that created the profile (first sign-in of an address).');
  const sessionsCreated = counter('hallpass_sessions_created_total', 'Sessions opened.');
  const sessionsRefreshed = counter('hallpass_sessions_refreshed_total', 'Refresh-token rotations.');
  const sessionsRevoked = counter('hallpass_sessions_revoked_total', 'Sessions revoked, by reason.', ['reason']);
  const mailAttempts = counter('hallpass_mail_delivery_attempts_total', 'Mail handed to the transport (each retry counts).');
  const mailFailures = counter('hallpass_mail_delivery_failures_total', 'Mail deliveries the transport refused or could not make.');
  const mailExpired = counter('hallpass_mail_expired_total', 'Queued mail dropped because its code expired before delivery.');
  const mailSeconds = histogram('hallpass_mail_delivery_duration_seconds', 'Time the transport took to accept a mail (SMTP round trip).');
  const rtDeliveries = counter('hallpass_realtime_deliveries_total', 'Realtime events sent to a channel.');
  const rtLatency = histogram(
    'hallpass_realtime_commit_to_send_seconds',
    'From the commit of a change or broadcast to its frame leaving this instance, per event.',
  );
  const restRequests = counter('hallpass_rest_requests_total', 'Data API (/rest/v1) requests by method and status.', ['method', 'status']);
  const restSeconds = histogram('hallpass_rest_request_duration_seconds', 'Data API (/rest/v1) request duration by method.', ['method']);
  const httpResponses = counter('hallpass_http_responses_total', 'HTTP responses by status code.', ['status']);
  // Every request counts in these: their labelled children are kept, so a request costs a Map
  // lookup rather than prom-client's label validation and hashing. Bounded: methods times statuses.
  const restByMethodStatus = new Map<string, Counter.Internal>();
  const restSecondsByMethod = new Map<string, Histogram.Internal<'method'>>();
  const httpByStatus = new Map<number, Counter.Internal>();
  const dbUnavailable = counter('hallpass_database_unavailable_total', 'Requests answered 503 database_unavailable.');
  const backupRuns = counter(
    'hallpass_backup_runs_total',
    'Scheduled backup runs on this instance by outcome (ok, skipped, or failed_<stage>: backup, verify, audit-export).',
    ['outcome'],
  );
  const backupLastOk = new Gauge({
    name: 'hallpass_backup_last_success_timestamp_seconds',
    help: 'When this instance last finished a scheduled backup that verified (Unix seconds; 0 before the first).',
    registers: [registry],
  });

  const gauge = (name: string, help: string, read: (g: Gauge) => Promise<void> | void) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        await read(this);
      },
    });
  // One query per scrape gives both outbox figures; it reads the partial indexes on pending/sending.
  let outboxRead: Promise<{ depth: number; oldestSeconds: number } | null> | null = null;
  const outbox = () => {
    outboxRead ??= (sources.outbox?.() ?? Promise.resolve(null))
      .catch(() => null)
      .finally(() => setImmediate(() => (outboxRead = null)));
    return outboxRead;
  };
  gauge('hallpass_mail_outbox_depth', 'Mail waiting to be delivered (pending or being sent).', async (g) => {
    const o = await outbox();
    if (o) g.set(o.depth);
  });
  gauge('hallpass_mail_outbox_oldest_age_seconds', 'Age of the oldest mail waiting to be delivered (0 when none).', async (g) => {
    const o = await outbox();
    if (o) g.set(o.oldestSeconds);
  });
  const pool = (pick: (s: PoolStats) => number) => (g: Gauge) => {
    const s = sources.pool?.();
    if (s) g.set(pick(s));
  };
  gauge('hallpass_db_pool_in_use', 'Database connections checked out by a query or transaction.', pool((s) => s.inUse));
  gauge('hallpass_db_pool_waiting', 'Callers waiting for a database connection.', pool((s) => s.waiting));
  gauge('hallpass_db_pool_max', 'The most database connections the pool opens (DATABASE_POOL_SIZE).', pool((s) => s.max));
  gauge('hallpass_realtime_sockets', 'Open realtime WebSockets on this instance.', (g) => {
    const r = sources.realtime?.();
    if (r) g.set(r.sockets);
  });
  gauge('hallpass_realtime_channels', 'Joined realtime channels on this instance.', (g) => {
    const r = sources.realtime?.();
    if (r) g.set(r.channels);
  });
  gauge('hallpass_realtime_queued_events', 'Row-change events waiting for their RLS decision on this instance (one per subscribed channel and change).', (g) => {
    const r = sources.realtime?.();
    if (r) g.set(r.queued);
  });

  return {
    registry,
    async outcome(what, work) {
      const count = what === 'send' ? sends : verifies;
      try {
        const result = await work;
        count.inc({ outcome: 'ok' });
        return result;
      } catch (err) {
        const code = err instanceof AppError && isErrorCode(err.code) ? err.code : 'internal';
        count.inc({ outcome: code });
        const limiter = limiterOf[code];
        if (limiter) refusals.inc({ limiter });
        throw err;
      }
    },
    limited: (limiter) => refusals.inc({ limiter }),
    signedIn(created) {
      signIns.inc();
      sessionsCreated.inc();
      if (created) signUps.inc();
    },
    sessionRefreshed: () => sessionsRefreshed.inc(),
    sessionRevoked: (reason) => sessionsRevoked.inc({ reason }),
    mailDelivery(outcome, seconds) {
      if (outcome === 'expired') return mailExpired.inc();
      mailAttempts.inc();
      mailSeconds.observe(seconds);
      if (outcome === 'failed') mailFailures.inc();
    },
    realtimeDelivered(count, commitToSendSeconds) {
      rtDeliveries.inc(count);
      if (commitToSendSeconds !== null) rtLatency.observe(Math.max(0, commitToSendSeconds));
    },
    restRequest(method, status, seconds) {
      const m = restMethods.has(method) ? method : 'OTHER';
      labelled(restByMethodStatus, `${m} ${status}`, () => restRequests.labels({ method: m, status: String(status) })).inc();
      labelled(restSecondsByMethod, m, () => restSeconds.labels({ method: m })).observe(seconds);
    },
    httpResponse: (status) => labelled(httpByStatus, status, () => httpResponses.labels({ status: String(status) })).inc(),
    databaseUnavailable: () => dbUnavailable.inc(),
    backupRun(outcome) {
      backupRuns.inc({ outcome: outcome.status === 'failed' ? `failed_${outcome.stage ?? 'backup'}` : outcome.status });
      if (outcome.status === 'ok') backupLastOk.set(Date.now() / 1000);
    },
    addSources: (more) => void Object.assign(sources, more),
    scrape: async () => `${await perProcess.metrics()}\n${await registry.metrics()}`,
    contentType: registry.contentType,
  };
}
