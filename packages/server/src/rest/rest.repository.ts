import { prepared, type Queryable } from '@hallpass/db';
import type { Identity } from '../sessions/identity.ts';
import { isPgError, RestError, restErrors } from './rest-errors.ts';
import type { Statement } from './sql-builder.ts';

export interface RunResult {
  n: number;
  body: string | null;
  total: number | null;
  /** Rows an upsert inserted (the rest it updated); null for other statements. */
  inserted: number | null;
}

export interface RunOptions {
  statement: Statement;
  count?: { statement: Statement; mode: 'exact' | 'planned' | 'estimated' } | undefined;
  expectOne: boolean;
  maxAffected?: number | undefined;
  rollback: boolean;
  maxRows: number;
}

// A fixed text: prepared once per pooled connection (the statement it carries is prepared by shape
// inside rest_run, migration 0024).
const restRunSql = prepared('select live, n, body, total, inserted from hallpass.rest_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)');

/**
 * Runs a data API statement as the caller in one round trip (hallpass.rest_run, migrations 0018 and 0024): the
 * session-liveness check for a user token, the switch to the caller's role and claims, the statement,
 * the `single()` and max-affected checks (HP116 / HP124 roll it back), the count, and tx=rollback
 * (the answer comes back inside the HPRBK error that undoes the transaction). Throws 401 when the
 * session is no longer live; nothing ran then.
 */
export async function runAs(q: Queryable, who: Identity, now: Date, o: RunOptions): Promise<RunResult> {
  const session = who.kind === 'user' ? who.liveSession : null;
  let row: (RunResult & { live: boolean }) | undefined;
  try {
    const { rows } = await q.query<RunResult & { live: boolean }>(
      restRunSql,
      [
        who.role,
        who.claimsJson,
        session?.id ?? null,
        session?.profileId ?? null,
        // As ISO text: cheaper to send than a Date, which pg formats field by field.
        now.toISOString(),
        o.statement.text,
        o.statement.params,
        o.count?.statement.text ?? null,
        o.count?.mode ?? null,
        o.expectOne,
        o.maxAffected ?? null,
        o.rollback,
        o.maxRows,
      ],
    );
    row = rows[0];
  } catch (err) {
    if (!isPgError(err)) throw err;
    if (err.code === 'HPRBK') {
      const counts = JSON.parse(err.message) as { n: number; total: number | null; inserted: number | null };
      return { n: counts.n ?? 0, body: err.detail || null, total: counts.total === null ? null : Number(counts.total), inserted: counts.inserted };
    }
    if (err.code === 'HP116') throw restErrors.singular(Number(err.detail ?? 0));
    if (err.code === 'HP124') {
      throw new RestError(400, 'PGRST124', 'Query result exceeds max-affected preference constraint', `The query affects ${Number(err.detail ?? 0)} rows`);
    }
    throw err;
  }
  if (!row?.live) throw restErrors.jwt('The session has ended; sign in again');
  return { n: row.n ?? 0, body: row.body, total: row.total === null ? null : Number(row.total), inserted: row.inserted };
}
