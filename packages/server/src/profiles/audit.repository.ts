import type { Queryable } from '@hallpass/db';

/** One audit_log row as exported: the profile write, who made it and when. */
export interface AuditEntry {
  id: number;
  at: string;
  table_name: string;
  op: 'INSERT' | 'UPDATE' | 'DELETE';
  row_id: string | null;
  tenant_id: string | null;
  subject_email: string | null;
  old_row: unknown;
  new_row: unknown;
  actor_sub: string | null;
  actor_email: string | null;
  actor_role: string;
}

/** The earliest entry's time, or null when the log is empty. Run as service_role (RLS). */
export async function firstAuditTime(q: Queryable): Promise<Date | null> {
  const { rows } = await q.query<{ at: Date | null }>('select min(at) as at from public.audit_log');
  return rows[0]?.at ? new Date(rows[0].at) : null;
}

/** Entries with `from <= at < to`, in id order. Run as service_role (RLS). */
export async function readAuditEntries(q: Queryable, from: Date, to: Date): Promise<AuditEntry[]> {
  const { rows } = await q.query<AuditEntry>(
    `select id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, table_name, op, row_id, tenant_id,
            subject_email, old_row, new_row, actor_sub, actor_email, actor_role
     from public.audit_log where at >= $1 and at < $2 order by id`,
    [from, to],
  );
  return rows;
}
