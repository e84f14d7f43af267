import type { Db } from '@hallpass/db';
import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import type { ServerKeys } from './shared/crypto.ts';
import type { SigningKey } from './sessions/signing-keys.ts';
import type { MailTransport } from './mail/transports.ts';
import type { Channel, Signal } from './shared/signal.ts';
import type { ClaimedMail } from './mail/outbox.repository.ts';
import type { PasswordlessBatches } from './passwordless/passwordless.service.ts';
import type { Metrics } from './metrics/metrics.ts';

/** What the clock says; injectable so tests can move time instead of sleeping. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

/**
 * Everything feature code needs, built once at start (`createDeps` in server.ts) and passed down
 * explicitly. Functions take the narrowest slice they use.
 */
export interface Deps {
  config: Readonly<Config>;
  db: Db;
  log: Logger;
  keys: ServerKeys;
  signing: SigningKey;
  mailer: MailTransport;
  /** Woken after a transaction that queued mail commits, so this instance's worker sends at once. */
  mailQueued: Signal;
  /**
   * Mail this instance wrote already leased to itself (a send): its worker delivers it from memory,
   * with no claim statement.
   */
  mailHandoff: Channel<ClaimedMail>;
  /**
   * Woken after a transaction that logged realtime events with hallpass.realtime_wake_after_commit
   * (the sign-in) commits: this instance's reader reads at once and other instances are notified.
   */
  realtimeWritten: Signal;
  clock: Clock;
  /** Sends and code verifies of this instance, gathered into one statement per batch. */
  passwordlessBatches: PasswordlessBatches;
  /** This instance's Prometheus metrics (its own registry). */
  metrics: Metrics;
}
