import type { Queryable } from '@hallpass/db';
import type { Deps } from '../deps.ts';
import { seal, unseal } from '../shared/crypto.ts';
import { renderSignInMail } from './templates.ts';

/** What a sign-in email needs; sealed at rest because it carries the code and link. */
export interface SignInMailPayload {
  tenantId: string;
  code: string | null;
  link: string | null;
  expiresAt: string;
}

/** Enqueues in the caller's transaction: the mail exists exactly when the auth request does. */
export async function enqueueSignInMail(
  deps: Pick<Deps, 'keys'>,
  tx: Queryable,
  m: { authRequestId: string; to: string; payload: SignInMailPayload },
): Promise<void> {
  const { rows } = await tx.query<{ id: number }>(
    `insert into hallpass.mail_outbox (auth_request_id, to_email) values ($1, $2) returning id`,
    [m.authRequestId, m.to],
  );
  const id = rows[0]!.id;
  // The row id is the associated data: a sealed payload cannot be moved to another row.
  await tx.query('update hallpass.mail_outbox set payload = $2 where id = $1', [id, seal(deps.keys, JSON.stringify(m.payload), `outbox:${id}`)]);
}

/** Older mail for a request that was resent would carry a dead code: do not send it. */
export async function supersedePendingMail(tx: Queryable, authRequestId: string): Promise<void> {
  await tx.query(
    `update hallpass.mail_outbox set status = 'superseded', payload = null
      where auth_request_id = $1 and status in ('pending', 'sending')`,
    [authRequestId],
  );
}

interface ClaimedMail {
  id: number;
  auth_request_id: string | null;
  to_email: string;
  payload: Uint8Array | null;
  attempts: number;
}

export interface OutboxWorkerOptions {
  /** How often to look for due mail when no notification arrives. @default 1000 */
  pollMs?: number;
  /** Rows claimed per round. @default 32 */
  batchSize?: number;
  /** A claimed row not finished by then is taken again (its worker died). @default config.mail.leaseSeconds */
  leaseSeconds?: number;
  /** After this many failed attempts the row is marked failed. @default 25 */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt up to `maxBackoffMs`. @default 1000 */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface OutboxWorker {
  /** Delivers everything due now; resolves when this round is done (tests, shutdown). */
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
  deps: Pick<Deps, 'db' | 'keys' | 'mailer' | 'config' | 'log' | 'clock'>,
  options: OutboxWorkerOptions = {},
): Promise<OutboxWorker> {
  const pollMs = options.pollMs ?? 1000;
  const batchSize = options.batchSize ?? 32;
  const leaseSeconds = options.leaseSeconds ?? deps.config.mail.leaseSeconds;
  const maxAttempts = options.maxAttempts ?? 25;
  const baseBackoffMs = options.baseBackoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;
  let stopped = false;
  let running: Promise<number> | null = null;
  let again = false;

  // Scheduling uses the database clock (rows are stamped by it); expiry of the code uses ours.
  const claim = async (): Promise<ClaimedMail[]> => {
    const { rows } = await deps.db.query<ClaimedMail>(
      `update hallpass.mail_outbox o
          set status = 'sending', attempts = o.attempts + 1, locked_until = now() + make_interval(secs => $1)
        where o.id in (
          select id from hallpass.mail_outbox
           where (status = 'pending' and next_attempt_at <= now()) or (status = 'sending' and locked_until < now())
           order by id
           limit $2
           for update skip locked)
        returning o.id, o.auth_request_id, o.to_email, o.payload, o.attempts`,
      [leaseSeconds, batchSize],
    );
    return rows;
  };

  const deliver = async (mail: ClaimedMail): Promise<void> => {
    if (!mail.payload) {
      await deps.db.query(`update hallpass.mail_outbox set status = 'failed', last_error = 'no payload' where id = $1`, [mail.id]);
      return;
    }
    const payload = JSON.parse(unseal(deps.keys, mail.payload, `outbox:${mail.id}`)) as SignInMailPayload;
    const now = deps.clock.now();
    const expiresAt = new Date(payload.expiresAt);
    if (expiresAt <= now) {
      await deps.db.query(`update hallpass.mail_outbox set status = 'expired', payload = null where id = $1`, [mail.id]);
      return;
    }
    // Sign-up or sign-in is decided here, off the request path, so /send does the same work for
    // known and unknown addresses.
    const { rows } = await deps.db.query<{ known: boolean }>(
      `select exists (select 1 from public.profiles where tenant_id = $1 and email = $2) as known`,
      [payload.tenantId, mail.to_email],
    );
    const rendered = renderSignInMail({
      kind: rows[0]?.known ? 'SIGNIN' : 'SIGNUP',
      code: payload.code,
      link: payload.link,
      expiresInMinutes: Math.max(1, Math.round((expiresAt.getTime() - now.getTime()) / 60_000)),
      appName: 'Hallpass',
    });
    try {
      await deps.mailer.send({ to: mail.to_email, from: deps.config.mail.from, ...rendered, code: payload.code, link: payload.link });
    } catch (err) {
      const giveUp = mail.attempts >= maxAttempts;
      const backoff = Math.min(maxBackoffMs, baseBackoffMs * 2 ** (mail.attempts - 1)) * (0.8 + Math.random() * 0.4);
      deps.log.warn({ mailId: mail.id, attempts: mail.attempts, giveUp, err: errorSummary(err) }, 'mail delivery failed');
      await deps.db.query(
        `update hallpass.mail_outbox
            set status = $2, next_attempt_at = now() + make_interval(secs => $3), locked_until = null, last_error = $4,
                payload = case when $2 = 'failed' then null else payload end
          where id = $1`,
        [mail.id, giveUp ? 'failed' : 'pending', backoff / 1000, errorSummary(err)],
      );
      return;
    }
    await deps.db.query(
      `update hallpass.mail_outbox set status = 'sent', sent_at = now(), payload = null, locked_until = null, last_error = null where id = $1`,
      [mail.id],
    );
    deps.log.info({ mailId: mail.id, transport: deps.mailer.kind }, 'mail sent');
  };

  const round = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      const batch = await claim();
      if (batch.length === 0) return total;
      await Promise.all(
        batch.map((m) =>
          deliver(m).catch((err: unknown) => deps.log.error({ mailId: m.id, err: errorSummary(err) }, 'mail worker error')),
        ),
      );
      total += batch.length;
      if (stopped) return total;
    }
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

  const unlisten = await deps.db.listen('hallpass_mail_outbox', () => void kick(), () => void kick());
  const timer = setInterval(() => void kick(), pollMs);
  timer.unref();
  void kick();

  return {
    async drain() {
      if (running) await running;
      return kick();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await unlisten();
      if (running) await running;
    },
  };
}

function errorSummary(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 500);
  return String(err).slice(0, 500);
}
