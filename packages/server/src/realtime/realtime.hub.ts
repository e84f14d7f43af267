import type { Db } from '@hallpass/db';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.ts';
import { canonical, columnKind, matchesFilter, type ColumnKind, type Filter } from './realtime.filters.ts';
import type { Identity } from '../sessions/identity.ts';
import type { OutgoingFrame, SharedFrame } from './realtime.protocol.ts';
import { subscriberClaims, type SubscriberClaims } from './realtime.claims.ts';
import { checkVisible, describeTable, legacyClaimsInUse, selectableColumns, type EventRow, type TableInfo, type VisibilityCheck } from './realtime.repository.ts';

export type ChangeEvent = '*' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface PgBinding {
  id: number;
  event: ChangeEvent;
  schema: string;
  /** A table name, or '*' for every published table of the schema. */
  table: string;
  filter: Filter | null;
}

/** What the hub needs of a joined channel; the socket owns the rest. */
export interface HubChannel {
  readonly key: string;
  /** The topic without the `realtime:` prefix. */
  readonly subTopic: string;
  readonly isPrivate: boolean;
  readonly broadcastSelf: boolean;
  readonly bindings: readonly PgBinding[];
  /** Who the channel acts as: bound at join, re-bound by each `access_token` message. */
  identity: Identity;
  deliver(eventId: number, frame: OutgoingFrame): void;
  /** Tells the client why (a `system` error) and closes the channel (`phx_close`). */
  kick(message: string): void;
}

interface Entry {
  channel: HubChannel;
  binding: PgBinding;
  /** The index key of an eq filter, fixed at add so remove finds it whatever the cache holds. */
  eqKey?: string | number;
}

interface TableSubs {
  /** column -> canonical value -> subscribers with `column=eq.value`: found by lookup, not scan. */
  eq: Map<string, Map<string | number, Set<Entry>>>;
  /** Subscribers with no filter or a non-eq filter: checked one by one. */
  scan: Set<Entry>;
}

const cacheMs = 30_000;
// How long the answer "does anything read the legacy claim settings?" is reused. A policy that starts
// reading them fails closed (not visible) until then.
const legacyClaimsMs = 5_000;

export interface HubOptions {
  /**
   * RLS checks per call of hallpass.realtime_visible: a 10,000-subscriber fan-out is 20 calls, and
   * the first subscribers are sent their event when the first call answers. @default 500
   */
  checksPerCall?: number;
  /** Calls in flight at once (each on its own pooled connection). @default 3 */
  parallelCalls?: number;
}

/** One change of a dispatch and its payload JSON by role. */
interface Change {
  row: EventRow;
  info: TableInfo;
  /** The table, quoted for the RLS call (`qualified`). */
  table: string;
  /** Table and primary key: what one RLS decision is about. */
  rowKey: string;
  /** The live row's primary key, one object for every subscriber's check. */
  pk: Record<string, unknown> | undefined;
  data: Map<string, string>;
  /** The frame by role and binding ids: built once, encoded once per (join ref, topic) by the sockets. */
  frames: Map<string, SharedFrame>;
}

/**
 * A channel's events in one dispatch, each with the ids of its matching bindings and where its RLS
 * answer is in its call's result (-1: not checked). A plain list, not a Map per channel: a fan-out
 * makes one of these for each of 10,000 channels, and a channel rarely has more than a few events.
 */
interface ChannelWork {
  channel: HubChannel;
  items: Array<{ change: Change; ids: number[]; at: number }>;
}

/**
 * The subscriber registry of one server instance and the delivery of log events to it: broadcasts
 * by topic, row changes by (table, filter) index, each INSERT/UPDATE checked against the table's
 * RLS as every candidate subscriber in one batched call before anything is sent.
 */
export class Hub {
  private readonly tables = new Map<string, TableSubs>();
  private readonly topics = new Map<string, Set<HubChannel>>();
  private readonly sessions = new Map<string, Set<HubChannel>>();
  private readonly entries = new Map<HubChannel, Entry[]>();
  private readonly tableInfo = new Map<string, { info: TableInfo | null; at: number }>();
  private readonly columns = new Map<string, { cols: Set<string>; at: number }>();
  private legacyClaims: { used: Promise<boolean>; at: number } | undefined;
  /** Each identity's claims prepared for the RLS call once (an identity is replaced, never changed). */
  private readonly prepared = new WeakMap<Identity, SubscriberClaims>();
  /** A server connection takes the RLS call's arrays in binary form (checkVisible); PGlite as text. */
  private get binaryArrays(): boolean {
    return this.db.kind === 'postgres';
  }
  /** Counters for operators and the bench. */
  readonly stats = { delivered: 0, checks: 0, dropped: 0 };

  private readonly checksPerCall: number;
  private readonly parallelCalls: number;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, 'realtimeDelivered'>,
    options: HubOptions = {},
  ) {
    this.checksPerCall = options.checksPerCall ?? 500;
    this.parallelCalls = options.parallelCalls ?? 3;
  }

  /**
   * A postgres_changes binding id: realtime-js routes an event to the bindings whose id it carries,
   * so an id needs to be unique only among one channel's bindings. As Supabase Realtime does (a hash
   * of the binding's parameters), equal subscriptions get equal ids: then a change's frame is the
   * same bytes for every channel that joined alike, encoded once however many receive it.
   */
  bindingId(binding: Omit<PgBinding, 'id' | 'filter'>, filter: string): number {
    return fnv1a(`${binding.event}\u0000${binding.schema}\u0000${binding.table}\u0000${filter}`);
  }

  get channelCount(): number {
    return this.entries.size;
  }

  async table(schema: string, table: string): Promise<TableInfo | null> {
    const key = `${schema}.${table}`;
    const hit = this.tableInfo.get(key);
    if (hit && Date.now() - hit.at < cacheMs) return hit.info;
    const info = await describeTable(this.db, schema, table);
    this.tableInfo.set(key, { info, at: Date.now() });
    return info;
  }

  /** Whether the RLS checks must set the legacy per-claim settings; asked at most every few seconds. */
  private legacyClaimsUsed(): Promise<boolean> {
    if (!this.legacyClaims || Date.now() - this.legacyClaims.at >= legacyClaimsMs) {
      // On a failed look-up, set them (always correct, only slower).
      this.legacyClaims = { used: legacyClaimsInUse(this.db).catch(() => true), at: Date.now() };
    }
    return this.legacyClaims.used;
  }

  /**
   * An identity's claims prepared for the RLS call, made once. A channel with change bindings has
   * them made when it joins, so the first change after a flash-sale crowd joined does not pay for
   * 10,000 of them before its first decision.
   */
  private subscriberOf(identity: Identity): SubscriberClaims {
    let subscriber = this.prepared.get(identity);
    if (!subscriber) {
      this.prepared.set(identity, (subscriber = subscriberClaims(identity.claims, identity.claimsJson)));
      subscriber.prepare(this.binaryArrays);
    }
    return subscriber;
  }

  add(channel: HubChannel): void {
    if (channel.bindings.length && channel.identity.role !== 'service_role') this.subscriberOf(channel.identity);
    const list: Entry[] = [];
    for (const binding of channel.bindings) {
      const entry: Entry = { channel, binding };
      list.push(entry);
      const subs = this.subsOf(`${binding.schema}.${binding.table}`);
      const f = binding.filter;
      if (f?.op === 'eq') {
        let byValue = subs.eq.get(f.column);
        if (!byValue) subs.eq.set(f.column, (byValue = new Map()));
        const key = canonical(this.kindOf(binding.schema, binding.table, f.column), f.values[0])!;
        entry.eqKey = key;
        let set = byValue.get(key);
        if (!set) byValue.set(key, (set = new Set()));
        set.add(entry);
      } else subs.scan.add(entry);
    }
    this.entries.set(channel, list);
    addTo(this.topics, channel.subTopic, channel);
    if (channel.identity.sessionId) addTo(this.sessions, channel.identity.sessionId, channel);
  }

  remove(channel: HubChannel): void {
    const list = this.entries.get(channel);
    if (!list) return;
    this.entries.delete(channel);
    for (const entry of list) {
      const key = `${entry.binding.schema}.${entry.binding.table}`;
      const subs = this.tables.get(key);
      if (!subs) continue;
      const f = entry.binding.filter;
      if (f?.op === 'eq') {
        const byValue = subs.eq.get(f.column);
        const k = entry.eqKey!;
        byValue?.get(k)?.delete(entry);
        if (byValue?.get(k)?.size === 0) byValue.delete(k);
        if (byValue?.size === 0) subs.eq.delete(f.column);
      } else subs.scan.delete(entry);
      if (subs.eq.size === 0 && subs.scan.size === 0) this.tables.delete(key);
    }
    removeFrom(this.topics, channel.subTopic, channel);
    if (channel.identity.sessionId) removeFrom(this.sessions, channel.identity.sessionId, channel);
  }

  /** Channels joined to a topic on this instance (what one broadcast to it fans out to here). */
  topicSize(subTopic: string): number {
    return this.topics.get(subTopic)?.size ?? 0;
  }

  /** A new token for a joined channel: the session index follows the identity. */
  rebind(channel: HubChannel, identity: Identity): void {
    if (channel.identity.sessionId) removeFrom(this.sessions, channel.identity.sessionId, channel);
    channel.identity = identity;
    if (identity.sessionId && this.entries.has(channel)) addTo(this.sessions, identity.sessionId, channel);
    if (channel.bindings.length && identity.role !== 'service_role' && this.entries.has(channel)) this.subscriberOf(identity);
  }

  /** Session ids some channel is bound to (for the periodic liveness check). */
  sessionIds(): string[] {
    return [...this.sessions.keys()];
  }

  /** Closes every channel of a revoked or ended session, telling each client why. */
  endSession(sessionId: string, message: string): number {
    const set = this.sessions.get(sessionId);
    if (!set) return 0;
    const channels = [...set];
    for (const channel of channels) channel.kick(message);
    return channels.length;
  }

  /**
   * Delivers log rows to every matching channel (or, for a replay, to `only`). Each INSERT/UPDATE
   * is checked against the table's RLS once per subscriber and row, as that subscriber, in
   * PostgreSQL: batched many subscribers to a call, a few calls at a time, and each call's
   * subscribers are sent their events as soon as it answers (a fan-out to 10,000 subscribers
   * starts sending after the first chunk, not the last).
   */
  async dispatch(rows: readonly EventRow[], only?: HubChannel, replayed = false): Promise<void> {
    const changes: Change[] = [];
    const work = new Map<HubChannel, ChannelWork>();
    for (const row of rows) {
      if (row.kind === 'broadcast') {
        this.sendBroadcast(row, only, replayed);
        continue;
      }
      const info = await this.table(row.schema_name!, row.table_name!);
      if (!info) continue;
      // A deleted row is its own question (judged on its old image), apart from the live row's.
      const image = row.op === 'DELETE' ? `DELETE\u0000${JSON.stringify(pick(row.old_record ?? {}, info.pk))}` : JSON.stringify(pick(row.record ?? {}, info.pk));
      const table = qualified(info);
      const change: Change = { row, info, table, rowKey: `${table}\u0000${image}`, pk: undefined, data: new Map(), frames: new Map() };
      let matched = false;
      this.candidates(row, info, only, (channel, bindingId) => {
        matched = true;
        let w = work.get(channel);
        if (!w) work.set(channel, (w = { channel, items: [] }));
        const last = w.items[w.items.length - 1];
        // Two equal bindings of one channel share an id (bindingId): listed once.
        if (last?.change === change) {
          if (!last.ids.includes(bindingId)) last.ids.push(bindingId);
        } else w.items.push({ change, ids: [bindingId], at: -1 });
      });
      if (matched) changes.push(change);
    }
    if (!changes.length) return;
    // The payload of each change is serialised once per role (the columns it may see).
    for (const w of work.values()) {
      for (const { change } of w.items) {
        const role = w.channel.identity.claims.role;
        if (!change.data.has(role)) change.data.set(role, JSON.stringify(changeData(change.row, change.info, await this.selectable(role, change.info))));
      }
    }

    // Which (subscriber, row) pairs RLS must decide, grouped into calls by subscriber so that each
    // channel's events are all answered by one call and go out in id order.
    const unchecked: ChannelWork[] = [];
    const calls: Array<{ works: ChannelWork[]; checks: VisibilityCheck[] }> = [];
    let call: { works: ChannelWork[]; checks: VisibilityCheck[] } | undefined;
    for (const w of work.values()) {
      const { claims, claimsJson } = w.channel.identity;
      // service_role bypasses RLS in Postgres too. A DELETE is checked against its old row image:
      // only who could read the row before it went hears of it (hallpass.realtime_visible_old).
      const rows = claims.role === 'service_role' ? [] : w.items;
      if (!rows.length) {
        unchecked.push(w);
        continue;
      }
      if (!call || call.checks.length >= this.checksPerCall) calls.push((call = { works: [], checks: [] }));
      call.works.push(w);
      for (let k = 0; k < rows.length; k++) {
        const item = rows[k]!;
        const { change } = item;
        // One decision per subscriber and row: two events of one row in this batch are the same
        // question ("may this subscriber see the row now?"), asked once.
        let earlier = -1;
        for (let e = 0; e < k && earlier === -1; e++) if (rows[e]!.change.rowKey === change.rowKey) earlier = rows[e]!.at;
        if (earlier !== -1) {
          item.at = earlier;
          continue;
        }
        item.at = call.checks.length;
        const deleted = change.row.op === 'DELETE';
        const row = deleted ? (change.row.old_record ?? {}) : (change.pk ??= pick(change.row.record!, change.info.pk));
        const subscriber = this.subscriberOf(w.channel.identity);
        call.checks.push({ table: change.table, row, deleted, role: claims.role, claims: claimsJson, subscriber });
      }
    }
    for (const w of unchecked) this.deliverWork(w, [], replayed);
    let next = 0;
    const runCalls = async () => {
      while (next < calls.length) {
        const { works, checks } = calls[next++]!;
        let visible: boolean[];
        try {
          visible = await checkVisible(this.db, checks, await this.legacyClaimsUsed(), { binaryArrays: this.binaryArrays });
        } catch (err) {
          // Nothing is sent unchecked: a failed call drops its events (logged).
          this.log.error({ err }, 'realtime: RLS check failed; dropping the events it was for');
          visible = checks.map(() => false);
        }
        this.stats.checks += checks.length;
        for (const w of works) this.deliverWork(w, visible, replayed);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.parallelCalls, calls.length) }, runCalls));
  }

  /** Sends a channel its events of this dispatch, in id order, those RLS let it see. */
  private deliverWork(w: ChannelWork, visible: readonly boolean[], replayed: boolean): void {
    const { channel } = w;
    for (const { change, ids, at } of w.items) {
      if (at !== -1 && !visible[at]) {
        this.stats.dropped++;
        continue;
      }
      const role = channel.identity.claims.role;
      const key = `${role}\u0000${ids.join(',')}`;
      let frame = change.frames.get(key);
      if (!frame) {
        const payloadJson = `{"ids":[${ids.join(',')}],"data":${change.data.get(role)!}}`;
        change.frames.set(key, (frame = { ref: null, event: 'postgres_changes', payloadJson, encoded: new Map() }));
      }
      channel.deliver(change.row.id, frame);
      this.delivered(change.row, replayed);
    }
  }

  private delivered(row: EventRow, replayed: boolean): void {
    this.stats.delivered++;
    this.metrics.realtimeDelivered(1, replayed ? null : (Date.now() - row.created_at.getTime()) / 1000);
  }

  private sendBroadcast(row: EventRow, only: HubChannel | undefined, replayed: boolean): void {
    const channels = only ? [only] : [...(this.topics.get(row.topic!) ?? [])];
    for (const channel of channels) {
      // A private message never reaches a public channel of the same name, and the reverse.
      if (channel.subTopic !== row.topic || channel.isPrivate !== row.private) continue;
      if (!channel.broadcastSelf && row.origin === channel.key) continue;
      const meta = replayed ? { id: String(row.id), replayed: true } : { id: String(row.id) };
      channel.deliver(row.id, { ref: null, event: 'broadcast', payload: { type: 'broadcast', event: row.event, payload: row.payload, meta } });
      this.delivered(row, replayed);
    }
  }

  /** Calls `each` for every channel binding that matches the change (a channel once per binding). */
  private candidates(row: EventRow, info: TableInfo, only: HubChannel | undefined, each: (channel: HubChannel, bindingId: number) => void): void {
    const image = (row.op === 'DELETE' ? row.old_record : row.record) ?? {};
    const kinds = new Map(info.columns.map((c) => [c.name, columnKind(c.type)]));
    const consider = (channel: HubChannel, binding: PgBinding) => {
      if (binding.event !== '*' && binding.event !== row.op) return;
      if (binding.filter && !matchesFilter(binding.filter, kinds.get(binding.filter.column) ?? 'text', image)) return;
      each(channel, binding.id);
    };
    if (only) {
      for (const binding of only.bindings) {
        if (binding.schema === row.schema_name && (binding.table === row.table_name || binding.table === '*')) consider(only, binding);
      }
      return;
    }
    for (const key of [`${row.schema_name}.${row.table_name}`, `${row.schema_name}.*`]) {
      const subs = this.tables.get(key);
      if (!subs) continue;
      for (const [column, byValue] of subs.eq) {
        const v = canonical(kinds.get(column) ?? 'text', image[column]);
        if (v !== null) for (const entry of byValue.get(v) ?? []) consider(entry.channel, entry.binding);
      }
      for (const entry of subs.scan) consider(entry.channel, entry.binding);
    }
  }

  /** The columns `role` may select on the table (cached): events carry and filters use only these. */
  async selectable(role: string, info: TableInfo): Promise<Set<string>> {
    const key = `${role}|${info.schema}.${info.table}`;
    const hit = this.columns.get(key);
    if (hit && Date.now() - hit.at < cacheMs) return hit.cols;
    const cols = new Set(await selectableColumns(this.db, role, info.schema, info.table));
    this.columns.set(key, { cols, at: Date.now() });
    return cols;
  }

  private kindOf(schema: string, table: string, column: string): ColumnKind {
    const info = this.tableInfo.get(`${schema}.${table}`)?.info;
    const type = info?.columns.find((c) => c.name === column)?.type;
    return type ? columnKind(type) : 'text';
  }

  private subsOf(key: string): TableSubs {
    let subs = this.tables.get(key);
    if (!subs) this.tables.set(key, (subs = { eq: new Map(), scan: new Set() }));
    return subs;
  }
}

/**
 * The `data` of a postgres_changes message, as Supabase Realtime sends it. `old_record` carries the
 * primary key only (what Postgres' default replica identity gives), and only columns the
 * subscriber's role may select are included.
 */
function changeData(row: EventRow, info: TableInfo, cols: Set<string>) {
  const project = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([k]) => cols.has(k)));
  return {
    schema: row.schema_name,
    table: row.table_name,
    commit_timestamp: row.created_at.toISOString(),
    type: row.op,
    columns: info.columns.filter((c) => cols.has(c.name)),
    ...(row.op !== 'DELETE' ? { record: project(row.record ?? {}) } : {}),
    ...(row.op !== 'INSERT' ? { old_record: project(pick(row.old_record ?? {}, info.pk)) } : {}),
    errors: null,
  };
}

/** 32-bit FNV-1a, as a positive 31-bit number (a JSON-safe small integer). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) & 0x7fffffff;
}

function pick(r: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, r[k]]));
}

/** A catalog-checked `schema.table`, quoted for the regclass cast. */
function qualified(info: TableInfo): string {
  return `"${info.schema.replace(/"/g, '""')}"."${info.table.replace(/"/g, '""')}"`;
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  set?.delete(value);
  if (set?.size === 0) map.delete(key);
}
