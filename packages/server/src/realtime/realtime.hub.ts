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
  /**
   * Events waiting for their RLS decision past which `accept` waits for room (the log reader then
   * stops reading until the hub catches up): memory stays bounded under any load. @default 50,000
   */
  maxQueued?: number;
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
 * One event for one channel: the ids of its matching bindings, where its RLS answer is in its call's
 * result (-1: not checked), and the tally of the dispatch waiting for it, if one waits.
 */
interface WorkItem {
  change: Change;
  ids: readonly number[];
  at: number;
  replayed: boolean;
  tally: Tally | undefined;
  /** Counted in the hub's `queued` (sent at once, it never was). */
  queued: boolean;
}

/** Events of one dispatch still to be delivered or dropped; `done` runs when none are left. */
interface Tally {
  left: number;
  done(): void;
}

/**
 * A channel's events waiting for RLS, in id order. A channel is in at most one call at a time (its
 * events go out in id order); events that arrive while it is `deciding` wait for the next call.
 * Events that arrive while it is `queued` join the call it is queued for: a change of a row the
 * channel already waits on is the same question ("may this subscriber see the row now?"), so a
 * burst of updates to one row costs each subscriber one decision per turn, not one per update.
 */
interface ChannelQueue {
  channel: HubChannel;
  items: WorkItem[];
  state: 'queued' | 'deciding';
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
  private readonly maxQueued: number;
  /** Channels with events waiting for RLS (queued or in a call). */
  private readonly queues = new Map<HubChannel, ChannelQueue>();
  /** Queued channels in turn order (from `readyAt`): each call takes the next ones. */
  private ready: ChannelQueue[] = [];
  private readyAt = 0;
  private callsInFlight = 0;
  /** Events in `queues` not yet delivered or dropped. */
  private queued = 0;
  /** Waiters for room under maxQueued, and for the queues to empty (idle). */
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, 'realtimeDelivered'>,
    options: HubOptions = {},
  ) {
    this.checksPerCall = options.checksPerCall ?? 500;
    this.parallelCalls = options.parallelCalls ?? 3;
    this.maxQueued = options.maxQueued ?? 50_000;
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

  /** Events waiting for their RLS decision (or in a call): a fan-out's backlog, for operators. */
  get queuedCount(): number {
    return this.queued;
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
    // Its queued events go nowhere now (one in a call is let go when the call answers).
    const queue = this.queues.get(channel);
    if (queue?.state === 'queued') {
      this.queues.delete(channel);
      const items = queue.items;
      queue.items = [];
      for (const item of items) this.settle(item, false);
      this.wakeIfIdle();
    }
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
   * Delivers log rows to every matching channel (or, for a replay, to `only`) and resolves when
   * every one of them was sent or dropped. Each INSERT/UPDATE is checked against the table's RLS
   * once per subscriber and row, as that subscriber, in PostgreSQL (see `accept` for how).
   */
  async dispatch(rows: readonly EventRow[], only?: HubChannel, replayed = false): Promise<void> {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const tally: Tally = { left: 1, done };
    await this.enqueue(rows, only, replayed, tally);
    this.settleTally(tally);
    await finished;
  }

  /**
   * The log reader's entry: queues the rows' events and resolves once they are queued and the
   * queue has room (under `maxQueued`), not when they are delivered, so the next rows join the
   * queues while these are decided. Broadcasts go out at once. Each channel with events is queued
   * for RLS in turn; a call takes the next `checksPerCall` checks of queued channels, a few calls
   * at a time, and each call's channels are sent their events as soon as it answers. A channel's
   * events go out in id order, and an event that arrives while its channel waits in the queue joins
   * that channel's turn: a fan-out to 10,000 subscribers that changes ten times a second sweeps the
   * subscribers in turns, each deciding every row a subscriber waits on once, instead of 10,000
   * decisions per change queued behind each other.
   */
  async accept(rows: readonly EventRow[]): Promise<void> {
    await this.enqueue(rows, undefined, false, undefined);
    while (this.queued > this.maxQueued) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves when no event waits for RLS and no call is in flight (for shutdown and tests). */
  idle(): Promise<void> {
    if (this.queues.size === 0 && this.callsInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async enqueue(rows: readonly EventRow[], only: HubChannel | undefined, replayed: boolean, tally: Tally | undefined): Promise<void> {
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
      // Who matched, as (channel, binding id) pairs in one flat list: a fan-out is 10,000 of them.
      const matched: Array<HubChannel | number> = [];
      this.candidates(row, info, only, (channel, bindingId) => void matched.push(channel, bindingId));
      if (!matched.length) continue;
      // The payload is serialised once per role (the columns it may see), before any of its events
      // is queued: a call that answers meanwhile sends only events whose payload is ready.
      for (let i = 0; i < matched.length; i += 2) {
        const role = (matched[i] as HubChannel).identity.claims.role;
        if (!change.data.has(role)) change.data.set(role, JSON.stringify(changeData(row, info, await this.selectable(role, info))));
      }
      // One binding-id list per binding, shared by the items that matched only it.
      const single = new Map<number, readonly number[]>();
      // service_role bypasses RLS in Postgres too: sent now, unless earlier events of the channel
      // still wait (a token swap mid-queue), which keeps its events in id order.
      let now: Map<HubChannel, WorkItem> | undefined;
      for (let i = 0; i < matched.length; i += 2) {
        const channel = matched[i] as HubChannel;
        const bindingId = matched[i + 1] as number;
        // Left (or kicked) while the payload was being prepared above: nothing to decide for it.
        if (!only && !this.entries.has(channel)) continue;
        let queue = this.queues.get(channel);
        let item: WorkItem | undefined;
        if (!queue && channel.identity.claims.role === 'service_role') {
          item = (now ??= new Map()).get(channel);
          if (!item) now.set(channel, (item = this.workItem(change, [], replayed, tally, false)));
        } else {
          if (!queue) {
            this.queues.set(channel, (queue = { channel, items: [], state: 'queued' }));
            this.ready.push(queue);
          }
          const last = queue.items[queue.items.length - 1];
          if (last?.change === change) item = last;
          else {
            let ids = single.get(bindingId);
            if (!ids) single.set(bindingId, (ids = [bindingId]));
            queue.items.push(this.workItem(change, ids, replayed, tally, true));
            continue;
          }
        }
        // Two equal bindings of one channel share an id (bindingId): listed once.
        if (!item.ids.includes(bindingId)) item.ids = [...item.ids, bindingId];
      }
      for (const [channel, item] of now ?? []) this.send(channel, item);
    }
    this.pump();
  }

  /** A new event for one channel, counted in its dispatch's tally and, when `queued`, in `queued`. */
  private workItem(change: Change, ids: readonly number[], replayed: boolean, tally: Tally | undefined, queued: boolean): WorkItem {
    if (tally) tally.left++;
    if (queued) this.queued++;
    return { change, ids, at: -1, replayed, tally, queued };
  }

  /** Starts calls while fewer than `parallelCalls` are in flight and channels are queued. */
  private pump(): void {
    while (this.callsInFlight < this.parallelCalls && this.readyAt < this.ready.length) {
      const taken: Array<{ queue: ChannelQueue; items: WorkItem[] }> = [];
      const checks: VisibilityCheck[] = [];
      while (checks.length < this.checksPerCall && this.readyAt < this.ready.length) {
        const queue = this.ready[this.readyAt++]!;
        // Emptied by remove() after it was queued.
        if (!queue.items.length) continue;
        const items = queue.items;
        queue.items = [];
        queue.state = 'deciding';
        taken.push({ queue, items });
        const { identity } = queue.channel;
        // service_role bypasses RLS in Postgres too: its events stay unchecked (at -1).
        if (identity.claims.role === 'service_role') continue;
        for (let k = 0; k < items.length; k++) {
          const item = items[k]!;
          const { change } = item;
          // One decision per subscriber and row: two events of one row in this turn are the same
          // question ("may this subscriber see the row now?"), asked once.
          let earlier = -1;
          for (let e = 0; e < k && earlier === -1; e++) if (items[e]!.change.rowKey === change.rowKey) earlier = items[e]!.at;
          if (earlier !== -1) {
            item.at = earlier;
            continue;
          }
          item.at = checks.length;
          // A DELETE is checked against its old row image: only who could read the row before it
          // went hears of it (hallpass.realtime_visible_old).
          const deleted = change.row.op === 'DELETE';
          const row = deleted ? (change.row.old_record ?? {}) : (change.pk ??= pick(change.row.record!, change.info.pk));
          checks.push({ table: change.table, row, deleted, role: identity.claims.role, claims: identity.claimsJson, subscriber: this.subscriberOf(identity) });
        }
      }
      if (this.readyAt > 1024 && this.readyAt * 2 > this.ready.length) {
        this.ready = this.ready.slice(this.readyAt);
        this.readyAt = 0;
      }
      if (!taken.length) break;
      this.callsInFlight++;
      void this.decide(taken, checks)
        .catch((err: unknown) => this.log.error({ err }, 'realtime: delivering checked events failed'))
        .finally(() => {
          this.callsInFlight--;
          this.pump();
          this.wakeIfIdle();
        });
    }
  }

  private wakeIfIdle(): void {
    if (this.queues.size === 0 && this.callsInFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** One call's RLS answers, then each of its channels' events sent (or dropped) in id order. */
  private async decide(taken: ReadonlyArray<{ queue: ChannelQueue; items: WorkItem[] }>, checks: VisibilityCheck[]): Promise<void> {
    let visible: boolean[] = [];
    if (checks.length) {
      try {
        visible = await checkVisible(this.db, checks, await this.legacyClaimsUsed(), { binaryArrays: this.binaryArrays });
      } catch (err) {
        // Nothing is sent unchecked: a failed call drops its events (logged).
        this.log.error({ err }, 'realtime: RLS check failed; dropping the events it was for');
        visible = checks.map(() => false);
      }
      this.stats.checks += checks.length;
    }
    for (const { queue, items } of taken) {
      for (const item of items) {
        if (item.at === -1 || visible[item.at]) this.send(queue.channel, item);
        else this.settle(item, false);
      }
      if (this.queues.get(queue.channel) !== queue) continue;
      // Events that came meanwhile wait for the channel's next turn.
      if (queue.items.length) {
        queue.state = 'queued';
        this.ready.push(queue);
      } else this.queues.delete(queue.channel);
    }
  }

  /** Sends one event to a channel (its frame shared by every channel that joined alike). */
  private send(channel: HubChannel, item: WorkItem): void {
    // A channel that left or was kicked (a revoked session) while its decision was in flight gets
    // nothing more. A replay's channel is not registered; its socket checks it is still joined.
    if (!item.replayed && !this.entries.has(channel)) return this.settle(item, false);
    const { change, ids } = item;
    const role = channel.identity.claims.role;
    const key = `${role}\u0000${ids.join(',')}`;
    let frame = change.frames.get(key);
    if (!frame) {
      const payloadJson = `{"ids":[${ids.join(',')}],"data":${change.data.get(role)!}}`;
      change.frames.set(key, (frame = { ref: null, event: 'postgres_changes', payloadJson, encoded: new Map() }));
    }
    channel.deliver(change.row.id, frame);
    this.delivered(change.row, item.replayed);
    this.settle(item, true);
  }

  /** An event is done with: sent (`sent`) or dropped. */
  private settle(item: WorkItem, sent: boolean): void {
    if (!sent) this.stats.dropped++;
    if (item.queued) {
      item.queued = false;
      this.queued--;
    }
    if (item.tally) this.settleTally(item.tally);
    if (this.queued <= this.maxQueued && this.roomWaiters.length) for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private settleTally(tally: Tally): void {
    if (--tally.left === 0) tally.done();
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
