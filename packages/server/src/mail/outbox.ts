import { createBatcher, type Queryable } from '@hallpass/db';
import type { Deps } from '../deps.ts';
import { seal, unseal } from '../shared/crypto.ts';
import { renderSignInMail, type TemplateKind } from './templates.ts';
import { claimDueMail, finishMail, insertMail, releaseMail, renewMailLeases, retryMailLater, supersedeMail, type ClaimedMail } from './outbox.repository.ts';

/** What a sign-in email needs; sealed at rest because it carries the code and link. */
export interface SignInMailPayload {
  tenantId: string;
  code: string | null;
  link: string | null;
  expiresAt: string;
  /** Chosen by the caller (Scalekit's `template`); else by whether the address has a profile. */
  template?: TemplateKind;
  /** Scalekit's `template_variables`, validated at send. */
  variables?: Record<string, string>;
}

/**
 * Seals a sign-in mail's data (it carries the code and link) for the outbox. The auth request id is
 * the associated data: a sealed payload cannot be moved to another request's mail.
 */
export function sealSignInMail(deps: Pick<Deps, 'keys'>, authRequestId: string, payload: SignInMailPayload): Buffer {
  return seal(deps.keys, JSON.stringify(payload), `outbox:${authRequestId}`);
}

/** Enqueues in the caller's transaction: the mail exists exactly when the auth request does. */
export async function enqueueSignInMail(
  deps: Pick<Deps, 'keys'>,
  tx: Queryable,
  m: { authRequestId: string; to: string; payload: SignInMailPayload },
): Promise<void> {
  await insertMail(tx, m.authRequestId, m.to, sealSignInMail(deps, m.authRequestId, m.payload));
}

/** Older mail for a request that was resent would carry a dead code: do not send it. */
export const supersedePendingMail = supersedeMail;

export interface OutboxWorkerOptions {
  /** How often to look for due mail when no notification arrives. @default 1000 */
  pollMs?: number;
  /** Rows claimed per statement. @default 32 */
  batchSize?: number;
  /** Deliveries on the wire at once (the SMTP pool queues beyond its connections). @default 64 */
  maxInFlight?: number;
  /** A claimed row not finished by then is taken again (its worker died). @default config.mail.leaseSeconds */
  leaseSeconds?: number;
  /** After this many failed attempts the row is marked failed. @default 25 */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt up to `maxBackoffMs`. @default 1000 */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long stop waits for deliveries on the wire. @default 5000 */
  stopWaitMs?: number;
}

export interface OutboxWorker {
  /** Delivers everything due now; resolves once it is sent and recorded (tests, shutdown). */
  drain(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Delivers the outbox. Wakes on NOTIFY from inserts and on a poll timer; claims rows with
 * `for update skip locked` so any number of instances share the work without sending twice, and
 * leases them so a worker killed mid-send leaves them to be taken again. Failures back off
 * exponentially; an SMTP outage delays mail but loses none.
 */
export async function startOutboxWorker(
  deps: Pick<Deps, 'db' | 'keys' | 'mailer' | 'mailQueued' | 'mailHandoff' | 'config' | 'log' | 'clock' | 'metrics'>,
  options: OutboxWorkerOptions = {},
): Promise<OutboxWorker> {
  const pollMs = options.pollMs ?? 1000;
  const batchSize = options.batchSize ?? 32;
  const maxInFlight = options.maxInFlight ?? 64;
  const leaseSeconds = options.leaseSeconds ?? deps.config.mail.leaseSeconds;
  const maxAttempts = options.maxAttempts ?? 25;
  const baseBackoffMs = options.baseBackoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;
  const messageHost = new URL(deps.config.baseUrl).hostname;
  let stopped = false;
  let onStop!: () => void;
  // A round waiting for a free delivery slot also wakes on stop (a delivery may hang on the relay).
  const stopping = new Promise<void>((resolve) => (onStop = resolve));
  let running: Promise<number> | null = null;
  let again = false;

  type Outcome = 'sent' | 'expired' | 'failed' | 'retrying';

  // Sends one claimed mail; final states are recorded by the caller for the whole batch at once.
  const deliver = async (mail: ClaimedMail): Promise<Outcome> => {
    if (!mail.payload) return 'failed';
    const payload = JSON.parse(unseal(deps.keys, mail.payload, `outbox:${mail.auth_request_id}`)) as SignInMailPayload;
    const now = deps.clock.now();
    const expiresAt = new Date(payload.expiresAt);
    // A code that no longer works is not worth an email.
    if (expiresAt <= now) {
      deps.metrics.mailDelivery('expired', 0);
      return 'expired';
    }
    // Sign-up or sign-in is decided here, off the request path, so /send does the same work for
    // known and unknown addresses.
    const rendered = renderSignInMail({
      kind: payload.template ?? (mail.known ? 'SIGNIN' : 'SIGNUP'),
      code: payload.code,
      link: payload.link,
      expiresInMinutes: Math.max(1, Math.round((expiresAt.getTime() - now.getTime()) / 60_000)),
      appName: payload.variables?.app_name ?? 'Hallpass',
      ...(payload.variables?.greeting ? { greeting: payload.variables.greeting } : {}),
    });
    const started = performance.now();
    try {
      const messageId = `<${mail.auth_request_id}.${mail.id}@${messageHost}>`;
      await deps.mailer.send({ to: mail.to_email, ...rendered, messageId, date: now, code: payload.code, link: payload.link });
      deps.metrics.mailDelivery('sent', (performance.now() - started) / 1000);
      return 'sent';
    } catch (err) {
      deps.metrics.mailDelivery('failed', (performance.now() - started) / 1000);
      const giveUp = mail.attempts >= maxAttempts;
      deps.log.warn({ mailId: mail.id, attempts: mail.attempts, giveUp, err: errorSummary(err) }, 'mail delivery failed');
      if (giveUp) {
        await finishMail(deps.db, [mail.id], 'failed', errorSummary(err));
        return 'retrying';
      }
      const backoff = Math.min(maxBackoffMs, baseBackoffMs * 2 ** (mail.attempts - 1)) * (0.8 + Math.random() * 0.4);
      await retryMailLater(deps.db, mail.id, backoff / 1000, errorSummary(err));
      return 'retrying';
    }
  };

  // Final states are written in batches: deliveries that end while one write runs go in the next.
  const record = createBatcher(async (done: Array<{ id: number; outcome: 'sent' | 'expired' | 'failed' }>) => {
    for (const status of ['sent', 'expired', 'failed'] as const) {
      const ids = done.filter((d) => d.outcome === status).map((d) => d.id);
      if (ids.length) await finishMail(deps.db, ids, status, status === 'failed' ? 'no payload' : undefined);
    }
    const sent = done.filter((d) => d.outcome === 'sent').length;
    if (sent) deps.log.info({ sent, transport: deps.mailer.kind }, 'mail sent');
    return done.map(() => undefined);
  }, { name: 'mail-record' });

  const deliverAndRecord = async (mail: ClaimedMail): Promise<void> => {
    try {
      const outcome = await deliver(mail);
      if (outcome !== 'retrying') await record({ id: mail.id, outcome });
    } catch (err) {
      // Left leased: taken again when the lease runs out.
      deps.log.error({ mailId: mail.id, err: errorSummary(err) }, 'mail worker error');
    }
  };

  // Deliveries run detached from the claiming loop: mail queued while others are on the wire is
  // claimed and sent at once, instead of waiting for the slowest of the previous batch.
  const inFlight = new Set<Promise<void>>();
  // Ids on the wire from this process. Their leases are renewed while they are (a relay can take
  // longer than a lease, and the SMTP pool queues), so no instance takes them again mid-delivery.
  const onWire = new Set<number>();
  const launch = (mail: ClaimedMail) => {
    onWire.add(mail.id);
    const delivery: Promise<void> = deliverAndRecord(mail).finally(() => {
      onWire.delete(mail.id);
      inFlight.delete(delivery);
      launchWaiting();
    });
    inFlight.add(delivery);
  };
  // Mail this instance's sends leased to it at insert, delivered from memory; beyond maxInFlight it
  // waits here (its lease lets another worker take it if this process dies first). Mail that waited
  // half its lease is left to the claiming loop, which takes it once the lease ran out: sending it
  // from here too late could race that claim and send it twice.
  const handedWaiting: Array<{ mail: ClaimedMail; at: number }> = [];
  const launchWaiting = () => {
    while (!stopped && inFlight.size < maxInFlight && handedWaiting.length > 0) {
      const { mail, at } = handedWaiting.shift()!;
      if (Date.now() - at < (leaseSeconds * 1000) / 2) launch(mail);
    }
  };
  const takeHandoff = (mail: ClaimedMail) => {
    if (stopped) return void handBack([mail.id]);
    handedWaiting.push({ mail, at: Date.now() });
    launchWaiting();
  };
  // Mail handed over by our sends but not yet on the wire is leased to us: on stop it is given back,
  // so another instance sends it within its poll interval instead of after the lease.
  const handBack = async (ids: number[]) => {
    if (!ids.length) return;
    await releaseMail(deps.db, ids).then(
      () => deps.log.info({ mails: ids.length }, 'handed back outbox leases'),
      (err: unknown) => deps.log.warn({ err: errorSummary(err), mails: ids.length }, 'could not hand back outbox leases'),
    );
  };
  const round = async (): Promise<number> => {
    let total = 0;
    while (!stopped) {
      if (inFlight.size >= maxInFlight) {
        await Promise.race([...inFlight, stopping]);
        continue;
      }
      const batch = await claimDueMail(deps.db, leaseSeconds, Math.min(batchSize, maxInFlight - inFlight.size));
      if (batch.length === 0) break;
      total += batch.length;
      // A row of ours whose lease ran out while it was still on the wire is not sent a second time.
      for (const mail of batch) if (!onWire.has(mail.id)) launch(mail);
    }
    return total;
  };

  const kick = (): Promise<number> => {
    if (stopped) return Promise.resolve(0);
    if (running) {
      again = true;
      return running;
    }
    running = round()
      .catch((err: unknown) => {
        deps.log.error({ err: errorSummary(err) }, 'mail worker round failed');
        return 0;
      })
      .finally(() => {
        running = null;
        if (again && !stopped) {
          again = false;
          void kick();
        }
      });
    return running;
  };

  // Sends hand their (already leased) mail over in-process; a resend wakes the claiming loop, as does
  // `NOTIFY hallpass_mail_outbox` from elsewhere; the poll catches mail queued by an instance that
  // died before sending it, once its lease has run out.
  const unsubscribe = deps.mailQueued.subscribe(() => void kick());
  const unsubscribeHandoff = deps.mailHandoff.subscribe(takeHandoff);
  const unlisten = await deps.db.listen('hallpass_mail_outbox', () => void kick(), () => void kick());
  const timer = setInterval(() => void kick(), pollMs);
  const renewal = setInterval(() => {
    if (onWire.size) void renewMailLeases(deps.db, [...onWire], leaseSeconds).catch((err: unknown) => deps.log.warn({ err: errorSummary(err) }, 'could not renew outbox leases'));
  }, (leaseSeconds * 1000) / 3);
  renewal.unref();
  timer.unref();
  void kick();

  return {
    async drain() {
      let total = 0;
      for (;;) {
        if (running) await running;
        const claimed = await kick();
        await Promise.all(inFlight);
        total += claimed;
        if (claimed === 0 && inFlight.size === 0) return total;
      }
    },
    async stop() {
      stopped = true;
      onStop();
      clearInterval(timer);
      clearInterval(renewal);
      unsubscribe();
      unsubscribeHandoff();
      await unlisten();
      if (running) await running;
      // Deliveries on the wire may finish; one stuck on a hanging relay stays leased and is taken
      // again by another instance when its lease runs out.
      await Promise.race([Promise.all(inFlight), new Promise((r) => setTimeout(r, options.stopWaitMs ?? 5000).unref())]);
      await handBack(handedWaiting.splice(0).map((w) => w.mail.id));
    },
  };
}

function errorSummary(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 500);
  return String(err).slice(0, 500);
}
