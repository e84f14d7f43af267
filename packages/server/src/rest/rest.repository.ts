import type { Queryable } from '@hallpass/db';
import type { Identity } from '../sessions/identity.ts';
import { restErrors } from './rest-errors.ts';
import type { Statement } from './sql-builder.ts';

export interface RunResult {
  n: number;
  body: string | null;
  total: number | null;
}

/**
 * Runs a data API statement as the caller in one round trip (hallpass.rest_run, migration 0007): the
 * session-liveness check for a user token, the switch to the caller's role and claims, the statement,
 * the `single()` check (SQLSTATE HP116 rolls it back) and the optional count. Throws 401 when the
 * session is no longer live; nothing ran then. The count statement is run with the statement's
 * parameters: its references are a prefix of them (both are built filters first).
 */
export async function runAs(
  q: Queryable,
  who: Identity,
  now: Date,
  s: { statement: Statement; count?: Statement | undefined; expectOne: boolean },
): Promise<RunResult> {
  const session = who.kind === 'user' ? who.liveSession : null;
  const { rows } = await q.query<RunResult & { live: boolean }>(
    'select live, n, body, total from hallpass.rest_run($1, $2, $3, $4, $5, $6, $7, $8, $9)',
    [
      who.role,
      who.claimsJson,
      session?.id ?? null,
      session?.profileId ?? null,
      now,
      s.statement.text,
      s.statement.params,
      s.count?.text ?? null,
      s.expectOne,
    ],
  );
  const row = rows[0];
  if (!row?.live) throw restErrors.jwt('The session has ended; sign in again');
  return { n: row.n ?? 0, body: row.body, total: row.total };
}
