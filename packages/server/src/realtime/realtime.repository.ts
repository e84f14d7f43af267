import type { Queryable } from '@hallpass/db';
import { arrayElement, binaryElements, type SubscriberClaims } from './realtime.claims.ts';

export interface EventRow {
  id: number;
  /** The writer's transaction id (xid8), as text: 64-bit. */
  tx: string;
  kind: 'change' | 'broadcast';
  schema_name: string | null;
  table_name: string | null;
  op: 'INSERT' | 'UPDATE' | 'DELETE' | null;
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
  topic: string | null;
  event: string | null;
  payload: unknown;
  private: boolean;
  origin: string | null;
  created_at: Date;
}

const eventColumns =
  'id, tx::text as tx, kind, schema_name, table_name, op, record, old_record, topic, event, payload, private, origin, created_at';

export interface EventBatch {
  rows: EventRow[];
  /** Every transaction below xmin had finished when the rows were read. */
  xmin: bigint;
}

/**
 * Committed events after `afterId`, with the snapshot they were read under (one statement, one
 * snapshot), so the caller can tell which missing ids may still commit.
 */
export async function readEventsAfter(q: Queryable, afterId: number, limit: number): Promise<EventBatch> {
  const { rows } = await q.query<{ xmin: string; events: EventRow[] | null }>(
    `select pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
            (select json_agg(e order by e.id) from (
               select ${eventColumns} from hallpass.realtime_events where id > $1 order by id limit $2) e) as events`,
    [afterId, limit],
  );
  const r = rows[0]!;
  const events = (r.events ?? []).map((e) => ({ ...e, created_at: new Date(e.created_at) }));
  return { rows: events, xmin: BigInt(r.xmin) };
}

/**
 * A transaction id newer than every one assigned so far. (A snapshot's xmax is not that: it is the
 * latest *completed* id + 1, and a running transaction may hold an id above it.) Asynchronous
 * commit: nothing is written that needs to survive a crash.
 */
export async function takeFreshXid(q: Queryable): Promise<bigint> {
  // One statement, its own transaction: the local setting applies to that transaction's commit.
  const { rows } = await q.query<{ xid: string }>(
    `select set_config('synchronous_commit', 'off', true) as s, pg_current_xact_id()::text as xid`,
  );
  return BigInt(rows[0]!.xid);
}

export async function maxEventId(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ id: number | null }>('select max(id) as id from hallpass.realtime_events');
  return Number(rows[0]?.id ?? 0);
}

/** Wakes every instance's log reader (hallpass.realtime_wake, migration 0011); `origin` names the sender. */
export async function wakeRealtimeReaders(q: Queryable, origin: string): Promise<void> {
  await q.query('select hallpass.realtime_wake($1)', [origin]);
}

export interface BroadcastInput {
  topic: string;
  event: string;
  payload: unknown;
  private: boolean;
  origin?: string | null;
}

/**
 * Logs broadcasts in one statement, in the given order (one row each). The list travels as one
 * jsonb array of records, so its fields cannot fall out of step.
 */
export async function insertBroadcasts(q: Queryable, list: readonly BroadcastInput[]): Promise<void> {
  if (list.length === 0) return;
  const records = list.map((b) => ({ topic: b.topic, event: b.event, payload: b.payload ?? null, private: b.private, origin: b.origin ?? null }));
  await q.query(
    `insert into hallpass.realtime_events (kind, topic, event, payload, private, origin)
     select 'broadcast', x.topic, x.event, x.payload, x.private, x.origin
       from rows from (jsonb_to_recordset($1::jsonb) as (topic text, event text, payload jsonb, private boolean, origin text))
            with ordinality as x (topic, event, payload, private, origin, ord)
      order by x.ord`,
    [JSON.stringify(records)],
  );
}

/** Events a rejoining channel missed: broadcasts on its topic and changes on its tables. */
export async function readReplay(
  q: Queryable,
  input: { topic: string; tables: string[]; afterId: number; since: Date; limit: number },
): Promise<EventRow[]> {
  const { rows } = await q.query<EventRow>(
    `select ${eventColumns} from hallpass.realtime_events
      where id > $1 and created_at >= $2
        and ((kind = 'broadcast' and topic = $3)
          or (kind = 'change' and (schema_name || '.' || table_name = any ($4) or schema_name || '.*' = any ($4))))
      order by id limit $5`,
    [input.afterId, input.since, input.topic, input.tables, input.limit],
  );
  return rows;
}

export interface VisibilityCheck {
  /** `schema.table`, already catalog-checked. */
  table: string;
  /** INSERT/UPDATE: the primary key of the row as it is now. DELETE: the whole old row image. */
  row: Record<string, unknown>;
  /** A deleted row: decided by the SELECT policies on its old image (hallpass.realtime_visible_old). */
  deleted: boolean;
  role: string;
  claims: string;
  /** The same claims prepared once per subscriber (realtime.claims.ts); without it they are escaped here. */
  subscriber?: SubscriberClaims;
}

/**
 * One round trip for a batch of (row, subscriber) checks; RLS decides each in Postgres. Live rows are
 * looked up by primary key as the subscriber; deleted rows are judged by the table's SELECT policies
 * on their old image (migration 0016). A batch without deletes runs exactly the one function.
 */
export async function checkVisible(
  q: Queryable,
  checks: readonly VisibilityCheck[],
  legacyClaims = true,
  options: { binaryArrays?: boolean } = {},
): Promise<boolean[]> {
  if (checks.length === 0) return [];
  const live = checks.filter((c) => !c.deleted);
  const gone = checks.filter((c) => c.deleted);
  const args = (list: readonly VisibilityCheck[]) => [
    list.map((c) => c.table),
    list.map((c) => JSON.stringify(c.row)),
    list.map((c) => c.role),
    list.map((c) => c.claims),
  ];
  // `legacyClaims` false: nothing reads request.jwt.claim.* (legacyClaimsInUse), so the switch per
  // subscriber skips them (migration 0021) and the batch runs set-based with the claim cache values
  // prepared per subscriber (migration 0023). The arrays go as literals built from elements escaped
  // once per subscriber: escaping 10,000 claim sets per change was a tenth of the server's CPU.
  const fast = !legacyClaims && live.every((c) => c.subscriber);
  const liveArgs = (list: readonly VisibilityCheck[]) => {
    const literal = (f: (c: VisibilityCheck, s: SubscriberClaims) => string) => `{${list.map((c) => f(c, c.subscriber!)).join(',')}}`;
    // A fan-out asks about one row (one object) for thousands of subscribers: encoded once.
    const encoded = new Map<Record<string, unknown> | string, string>();
    const rowElement = (r: Record<string, unknown> | string) => {
      let e = encoded.get(r);
      if (e === undefined) encoded.set(r, (e = arrayElement(typeof r === 'string' ? r : JSON.stringify(r))));
      return e;
    };
    const cachedOr = (f: (v: NonNullable<SubscriberClaims['cached']>) => string) => literal((_, s) => (s.cached ? f(s.cached) : 'NULL'));
    if (options.binaryArrays) {
      // node-postgres sends a Buffer parameter in binary format: the text arrays go as
      // PostgreSQL's binary array encoding, copied together from each subscriber's prepared bytes.
      // Element k of a subscriber's bytes: 0 the claims, then uid, email, role, tenant.
      const part = (s: SubscriberClaims, k: number) => [k === 0 ? 0 : s.binaryAt[k - 1]!, k < 4 ? s.binaryAt[k]! : s.binary.length] as const;
      const subscribers = list.map((c) => c.subscriber!);
      const bytes = subscribers.map((s) => s.binary);
      return [
        literal((c) => rowElement(c.table)),
        literal((c) => rowElement(c.row)),
        binaryTextArray(list.map((c) => roleElement(c.role)), (b) => [0, b.length]),
        ...[0, 1, 2, 3, 4].map((k) => binaryTextArray(bytes, (_, i) => part(subscribers[i]!, k))),
      ];
    }
    return [
      literal((c) => rowElement(c.table)),
      literal((c) => rowElement(c.row)),
      literal((c) => arrayElement(c.role)),
      literal((_, s) => s.claimsElement),
      cachedOr((v) => v.uid),
      cachedOr((v) => v.email),
      cachedOr((v) => v.role),
      cachedOr((v) => v.tenant),
    ];
  };
  const liveSql = fast
    ? 'hallpass.realtime_visible($1::regclass[], $2::jsonb[], $3::text[], $4::text[], false, $5::text[], $6::text[], $7::text[], $8::text[])'
    : `hallpass.realtime_visible($1::regclass[], $2::jsonb[], $3::text[], $4::text[], ${legacyClaims ? 'true' : 'false'})`;
  const liveCount = fast ? 8 : 4;
  const goneSql = (n: number) => `hallpass.realtime_visible_old($${n}::regclass[], $${n + 1}::jsonb[], $${n + 2}::text[], $${n + 3}::text[])`;
  const sql = !gone.length
    ? `select ${liveSql} as v, null::boolean[] as d`
    : !live.length
      ? `select null::boolean[] as v, ${goneSql(1)} as d`
      : `select ${liveSql} as v, ${goneSql(liveCount + 1)} as d`;
  const params = [...(live.length ? (fast ? liveArgs(live) : args(live)) : []), ...(gone.length ? args(gone) : [])];
  const { rows } = await q.query<{ v: boolean[] | null; d: boolean[] | null }>(sql, params);
  const v = rows[0]!.v ?? [];
  const d = rows[0]!.d ?? [];
  let i = 0;
  let j = 0;
  return checks.map((c) => (c.deleted ? d[j++] : v[i++]) ?? false);
}

const textOid = 25;
const roleElements = new Map<string, Buffer>();

/** A role's binary array element (roles are few: kept). */
function roleElement(role: string): Buffer {
  let e = roleElements.get(role);
  if (!e) {
    e = binaryElements([role]).bytes;
    if (roleElements.size < 100) roleElements.set(role, e);
  }
  return e;
}

/**
 * A one-dimensional text[] in PostgreSQL's binary format (array_recv): a header, then each
 * element's `[start, end)` bytes of its buffer, already in element form (length, then bytes).
 */
function binaryTextArray(buffers: readonly Buffer[], range: (b: Buffer, i: number) => readonly [number, number]): Buffer {
  let size = 20;
  const ranges = buffers.map((b, i) => {
    const r = range(b, i);
    size += r[1] - r[0];
    return r;
  });
  const out = Buffer.allocUnsafe(size);
  let hasNull = 0;
  let at = 20;
  buffers.forEach((b, i) => {
    const [start, end] = ranges[i]!;
    if (b.readInt32BE(start) === -1) hasNull = 1;
    at += b.copy(out, at, start, end);
  });
  out.writeInt32BE(1, 0); // dimensions
  out.writeInt32BE(hasNull, 4);
  out.writeUInt32BE(textOid, 8);
  out.writeInt32BE(buffers.length, 12);
  out.writeInt32BE(1, 16); // lower bound
  return out;
}

/** Does any policy or function outside Hallpass read the legacy claim settings (migration 0021)? */
export async function legacyClaimsInUse(q: Queryable): Promise<boolean> {
  const { rows } = await q.query<{ used: boolean }>('select hallpass.legacy_claims_in_use() as used');
  return rows[0]!.used;
}

export interface TableInfo {
  schema: string;
  table: string;
  /** `{name, type}` as realtime-js expects (`type` is the udt name: int4, text, timestamptz...). */
  columns: Array<{ name: string; type: string }>;
  pk: string[];
  rls: boolean;
  published: boolean;
}

export async function describeTable(q: Queryable, schema: string, table: string): Promise<TableInfo | null> {
  const { rows } = await q.query<{ info: TableInfo | null }>(
    `select json_build_object(
        'schema', n.nspname, 'table', c.relname, 'rls', c.relrowsecurity,
        'published', exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = 'hallpass_realtime_capture'),
        'pk', coalesce((select json_agg(a.attname order by a.attnum) from pg_index x
                 join pg_attribute a on a.attrelid = x.indrelid and a.attnum = any (x.indkey)
                where x.indrelid = c.oid and x.indisprimary), '[]'),
        'columns', coalesce((select json_agg(json_build_object('name', a.attname, 'type', t.typname) order by a.attnum)
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]')) as info
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
    [schema, table],
  );
  return rows[0]?.info ?? null;
}

/** Published tables of a schema (for `table: '*'` subscriptions). */
export async function publishedTables(q: Queryable, schema: string): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `select c.relname as name from pg_trigger t join pg_class c on c.oid = t.tgrelid
       join pg_namespace n on n.oid = c.relnamespace
      where t.tgname = 'hallpass_realtime_capture' and n.nspname = $1`,
    [schema],
  );
  return rows.map((r) => r.name);
}

/** The columns a role may select: events never carry a column its subscriber could not read. */
export async function selectableColumns(q: Queryable, role: string, schema: string, table: string): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `select a.attname as name from pg_attribute a
      where a.attrelid = format('%I.%I', $2::text, $3::text)::regclass and a.attnum > 0 and not a.attisdropped
        and has_column_privilege($1::text, a.attrelid, a.attnum, 'SELECT')`,
    [role, schema, table],
  );
  return rows.map((r) => r.name);
}

export async function pruneEvents(q: Queryable, olderThan: Date): Promise<number> {
  const { rowCount } = await q.query('delete from hallpass.realtime_events where created_at < $1', [olderThan]);
  return rowCount;
}

/** Of the given session ids, those revoked or expired (their channels must close). */
export async function endedSessions(q: Queryable, ids: readonly string[], now: Date): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<{ id: string }>(
    `select i.id::text as id from unnest($1::uuid[]) as i (id)
       left join hallpass.sessions s on s.id = i.id
      where s.id is null or s.revoked_at is not null or s.expires_at <= $2`,
    [ids, now],
  );
  return rows.map((r) => r.id);
}
