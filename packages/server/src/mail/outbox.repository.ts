import { prepared, type Db, type Queryable } from '@hallpass/db';

export interface ClaimedMail {
  id: number;
  auth_request_id: string | null;
  to_email: string;
  payload: Uint8Array | null;
  attempts: number;
  /** Whether the address already has a profile in the request's tenant: sign-in or sign-up mail. */
  known: boolean;
}

export async function insertMail(q: Queryable, authRequestId: string, to: string, sealed: Buffer): Promise<void> {
  await q.query(`insert into hallpass.mail_outbox (auth_request_id, to_email, payload) values ($1, $2, $3)`, [
    authRequestId,
    to,
    sealed,
  ]);
}

export async function supersedeMail(q: Queryable, authRequestId: string): Promise<void> {
  await q.query(
    `update hallpass.mail_outbox set status = 'superseded', payload = null
      where auth_request_id = $1 and status in ('pending', 'sending')`,
    [authRequestId],
  );
}

/**
 * Claims due mail: pending rows whose time has come, and rows whose worker's lease ran out (it died
 * mid-send). `skip locked` lets any number of instances claim side by side without sending twice.
 * Scheduling uses the database clock, which stamped the rows.
 */
export async function claimDueMail(q: Queryable, leaseSeconds: number, limit: number): Promise<ClaimedMail[]> {
  const { rows } = await q.query<ClaimedMail>(
    `update hallpass.mail_outbox o
        set status = 'sending', attempts = o.attempts + 1, locked_until = now() + make_interval(secs => $1)
      where o.id in (
        select id from hallpass.mail_outbox
         where (status = 'pending' and next_attempt_at <= now()) or (status = 'sending' and locked_until < now())
         order by id
         limit $2
         for update skip locked)
      returning o.id, o.auth_request_id, o.to_email, o.payload, o.attempts,
        exists (select 1 from hallpass.auth_requests r join public.profiles p on p.tenant_id = r.tenant_id and p.email = r.email
                 where r.id = o.auth_request_id) as known`,
    [leaseSeconds, limit],
  );
  return rows;
}

/** A final state that needs no payload any more: the sealed code is dropped with it. */
/**
 * Records final states. Its commit does not wait for the disk (synchronous_commit off for this one
 * statement, hence a Db and never a caller's transaction): a crash may forget the mark, and then the
 * lease runs out and the mail is sent again, the at-least-once delivery the outbox already has when a
 * worker dies between SMTP and this statement. No sign-in answer depends on it.
 */
export async function finishMail(db: Db, ids: number[], status: 'sent' | 'failed' | 'expired', error?: string): Promise<void> {
  await db.query(finishMailSql, [ids, status, error ?? null]);
}

const finishMailSql = prepared(`update hallpass.mail_outbox m
    set status = $2, payload = null, locked_until = null, last_error = $3,
        sent_at = case when $2 = 'sent' then now() end
   from (select set_config('synchronous_commit', 'off', true)) as async_commit
  where m.id = any($1::bigint[])`);

export async function retryMailLater(q: Queryable, id: number, delaySeconds: number, error: string): Promise<void> {
  await q.query(
    `update hallpass.mail_outbox
        set status = 'pending', next_attempt_at = now() + make_interval(secs => $2), locked_until = null, last_error = $3
      where id = $1`,
    [id, delaySeconds, error],
  );
}

/** Mail not yet delivered and the age of the oldest (seconds), in one statement over the partial indexes. */
export async function outboxBacklog(q: Queryable): Promise<{ depth: number; oldestSeconds: number }> {
  const { rows } = await q.query<{ depth: number; oldest: number | null }>(
    `select count(*)::int as depth, extract(epoch from now() - min(created_at))::float8 as oldest
       from hallpass.mail_outbox where status in ('pending', 'sending')`,
  );
  return { depth: rows[0]?.depth ?? 0, oldestSeconds: rows[0]?.oldest ?? 0 };
}

/**
 * Hands leased mail back (graceful shutdown): pending and due at once, so another instance sends it
 * on its next poll instead of waiting for the lease to run out. Only rows still leased are touched.
 */
export async function releaseMail(q: Queryable, ids: number[]): Promise<void> {
  if (!ids.length) return;
  await q.query(
    `update hallpass.mail_outbox set status = 'pending', next_attempt_at = now(), locked_until = null
      where id = any($1::bigint[]) and status = 'sending'`,
    [ids],
  );
}

/** Extends the leases of mail still on the wire, so a slow delivery is not taken again by others. */
export async function renewMailLeases(q: Queryable, ids: number[], leaseSeconds: number): Promise<void> {
  await q.query(
    `update hallpass.mail_outbox set locked_until = now() + make_interval(secs => $2)
      where id = any($1::bigint[]) and status = 'sending'`,
    [ids, leaseSeconds],
  );
}
