import type { Db, Queryable, Tx } from './types.ts';

/** The database roles client-facing queries may run as (Supabase's names). */
export const dbRoles = ['anon', 'authenticated', 'service_role'] as const;
export type DbRole = (typeof dbRoles)[number];

/** JWT claims as Postgres sees them in `request.jwt.claims`. */
export interface Claims {
  role: DbRole;
  sub?: string;
  email?: string;
  [claim: string]: unknown;
}

/**
 * Runs `fn` in a transaction as the claims' role, with `request.jwt.claims` set, so that RLS
 * policies (through `auth.jwt()`, `auth.uid()`, `auth.email()`) decide what it may touch. Both
 * settings are transaction-local: they end with the transaction and never leak to the next user of
 * a pooled connection.
 */
export function asUser<T>(db: Db, claims: Claims, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await setClaims(tx, claims);
    return fn(tx);
  });
}

/** The server's own work (profile sync): role `service_role`, which bypasses RLS. */
export function asService<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return asUser(db, { role: 'service_role' }, fn);
}

/**
 * Switches an open transaction to the claims' role. The role is checked against a closed list.
 * `hallpass.set_request_claims` (migration 0014) also sets the per-claim settings older PostgREST set
 * (`request.jwt.claim.email`, `jwt.claims.email`, ...), so policies pasted from older guides work.
 * Call it while the transaction runs as the server's own role (at its start, or after `resetRole`).
 */
export async function setClaims(tx: Queryable, claims: Claims): Promise<void> {
  if (!dbRoles.includes(claims.role)) throw new TypeError(`unknown database role: ${String(claims.role)}`);
  await tx.query('select hallpass.set_request_claims($1, $2)', [claims.role, JSON.stringify(claims)]);
}

/**
 * Back to the connection's own role inside a transaction that switched with `setClaims`. Built-ins
 * only: the role switched to may not call hallpass functions. Legacy per-claim settings left behind
 * are blanked by the next `setClaims`, and the server's own role is not subject to RLS.
 */
export async function resetRole(tx: Queryable): Promise<void> {
  await tx.query(`select set_config('role', 'none', true), set_config('request.jwt.claims', '', true)`);
}
