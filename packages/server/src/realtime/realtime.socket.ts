import type { WebSocket } from 'ws';
import { userTopic } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { checkFilter } from './realtime.filters.ts';
import { apiKeyIdentity, type Identity, type IdentityResolver, type UserIdentity } from '../sessions/identity.ts';
import type { ChangeEvent, Hub, HubChannel, PgBinding } from './realtime.hub.ts';
import { decodeBinary, decodeText, encodeFrame, encodeShared, sharedFrameKey, type Frame, type OutgoingFrame, type PreparedFrame, type SharedFrame, type Vsn, type WireFrame } from './realtime.protocol.ts';
import { createBucket, limitReasons, type Bucket, type RealtimeLimits } from './realtime.limits.ts';
import { readReplay, type BroadcastInput } from './realtime.repository.ts';

export type RealtimeDeps = Pick<Deps, 'config' | 'signing' | 'clock' | 'db' | 'log' | 'metrics'>;

/** What the sockets of one instance share besides the hub. */
export interface SocketsShared {
  limits: RealtimeLimits;
  identities: IdentityResolver;
  /** Logs a client broadcast; calls arriving together share one statement (group commit). */
  logBroadcast(b: BroadcastInput): Promise<void>;
}

type Resolved = { ok: true; identity: Identity } | { ok: false; reason: string; expired: boolean };

/** What the upgrade request said about the caller, read once. */
export interface Connection {
  id: string;
  /** The client's address, by the HTTP side's `clientIp` (TRUST_PROXY applies). */
  ip: string | null;
  vsn: Vsn;
  /** The apikey query parameter's role (anon when absent). */
  apiKeyRole: 'anon' | 'service_role';
  /** The access cookie, only when the upgrade came from an allowed origin (or no browser). */
  cookieToken: string | undefined;
}

const changeEvents = new Set<ChangeEvent>(['*', 'INSERT', 'UPDATE', 'DELETE']);
const maxChannelsPerSocket = 100;
const replayLimit = 1000;
/**
 * Unsent bytes a socket may have queued before it is closed as too slow: thousands of change
 * events, or 64 broadcasts of the largest size, more than one burst gives a client that reads.
 */
const maxBufferedBytes = 4 * 1024 * 1024;

/** The upgraded TCP socket under `ws`, as far as sending uses it. */
type Transport = { cork(): void; uncork(): void; write(chunk: Buffer): boolean };

interface JoinedChannel extends HubChannel {
  joinRef: string;
  topic: string;
  /** This channel's key in a shared frame's encodings (sharedFrameKey). */
  frameKey: string;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Live events held back while a replay is being sent, so the order stays by id. */
  pending: Array<{ id: number; frame: OutgoingFrame }> | null;
  replayedUpTo: number;
}

/**
 * One client socket speaking Phoenix channels: heartbeat, join/leave, access_token, client
 * broadcasts. Each channel has its own identity; the hub delivers events to it.
 */
export class RealtimeSocket {
  private readonly channels = new Map<string, JoinedChannel>();
  /**
   * Client broadcasts go through a token bucket per socket and then the instance's budget: each is a
   * row in the event log and a fan-out, so one client must not be able to flood them.
   */
  private broadcasts: Bucket | undefined;
  /** Closes a socket that joins nothing (an idle socket only holds a slot); cleared by the first join. */
  private joinTimer: NodeJS.Timeout | undefined;
  lastSeen = Date.now();
  private closed = false;
  /** The transport is corked until the end of this tick (see `send`). */
  private corked = false;

  /** The stream under `ws` (the upgraded TCP socket): corked so that one tick's frames are one write. */
  private readonly transport: Transport | undefined;
  /**
   * The transport, when a frame's bytes may go to it as they are: no extension was negotiated (no
   * per-message deflate), so a final text frame is the same bytes for every socket and `ws` keeps
   * no state between frames that such a write would skip.
   */
  private readonly wire: Transport | undefined;

  constructor(
    private readonly deps: RealtimeDeps,
    private readonly hub: Hub,
    private readonly ws: WebSocket,
    private readonly conn: Connection,
    private readonly instance: SocketsShared,
    transport?: Transport,
  ) {
    this.transport = transport;
    this.wire = transport && ws.extensions === '' ? transport : undefined;
    this.joinTimer = setTimeout(() => {
      if (this.channels.size === 0) ws.close(1008, limitReasons.joinTimeout);
    }, deps.config.realtime.joinTimeoutSeconds * 1000);
    this.joinTimer.unref();
    ws.on('message', (data, isBinary) => {
      this.lastSeen = Date.now();
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      // A frame we cannot read is dropped, never thrown: one bad client frame must not end the socket.
      const frame = isBinary ? decodeBinary(buf) : decodeText(conn.vsn, buf.toString('utf8'));
      if (!frame) return;
      this.handle(frame).catch((err: unknown) => {
        deps.log.error({ err, event: frame.event }, 'realtime: frame handling failed');
        this.reply(frame, 'error', { reason: 'Internal error' });
      });
    });
    ws.on('close', () => this.dispose());
    ws.on('error', () => this.dispose());
  }

  get channelCount(): number {
    return this.channels.size;
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.joinTimer);
    for (const ch of this.channels.values()) this.drop(ch);
  }

  terminate(): void {
    this.dispose();
    this.ws.terminate();
  }

  private send(frame: Frame | PreparedFrame | WireFrame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    // Backpressure: a client that stopped reading would make us buffer every event for it. Past
    // the cap it is cut off; it reconnects and catches up by replay, and memory stays bounded.
    if (this.ws.bufferedAmount > maxBufferedBytes) {
      this.deps.log.warn({ socket: this.conn.id, buffered: this.ws.bufferedAmount }, 'realtime: closing a socket that does not read');
      this.terminate();
      return;
    }
    // Every frame sent to this socket in this tick (a dispatch's events for it, a reply and its
    // system message) leaves in one write when the tick ends: one system call instead of one each,
    // and the client is woken once. The pattern Node documents for writable.cork().
    if (this.transport && !this.corked) {
      this.corked = true;
      this.transport.cork();
      process.nextTick(uncorkSocket, this);
    }
    // A shared frame's bytes go straight to the socket: ws.send would frame the same payload again
    // for each of 10,000 sockets (a header Buffer, an options object and two writes each).
    if ('wire' in frame) {
      if (this.wire) this.wire.write(frame.wire);
      else this.ws.send(frame.payload, { binary: false });
    } else this.ws.send(encodeFrame(this.conn.vsn, frame));
  }

  /** Ends this tick's cork (see `send`). */
  uncork(): void {
    this.corked = false;
    this.transport?.uncork();
  }

  /** One channel's copy of a frame: a shared frame's bytes are encoded once for all alike channels. */
  private frameFor(ch: JoinedChannel, f: OutgoingFrame): Frame | PreparedFrame | WireFrame {
    if ('encoded' in f) return encodeShared(this.conn.vsn, ch.frameKey, ch.joinRef, ch.topic, f as SharedFrame);
    return { ...f, joinRef: ch.joinRef, topic: ch.topic };
  }

  private reply(frame: Frame, status: 'ok' | 'error', response: Record<string, unknown>): void {
    this.send({ joinRef: frame.joinRef, ref: frame.ref, topic: frame.topic, event: 'phx_reply', payload: { status, response } });
  }

  private async handle(frame: Frame): Promise<void> {
    if (frame.topic === 'phoenix') {
      if (frame.event === 'heartbeat') this.reply(frame, 'ok', {});
      return;
    }
    if (frame.event === 'phx_join') return this.join(frame);
    const ch = this.channels.get(frame.topic);
    if (!ch || (frame.joinRef && frame.joinRef !== ch.joinRef)) {
      this.reply(frame, 'error', { reason: 'unmatched topic' });
      return;
    }
    switch (frame.event) {
      case 'phx_leave':
        this.drop(ch);
        this.reply(frame, 'ok', {});
        this.send({ joinRef: ch.joinRef, ref: null, topic: ch.topic, event: 'phx_close', payload: {} });
        return;
      case 'access_token':
        return this.rebind(ch, frame);
      case 'broadcast':
        return this.clientBroadcast(ch, frame);
      case 'presence':
        // Presence is not offered; answer so the client's push does not time out.
        this.reply(frame, 'ok', {});
        return;
      default:
        this.reply(frame, 'error', { reason: `unsupported event ${frame.event}` });
    }
  }

  /** The identity of a join: its access_token, else the upgrade's session cookie, else the apikey. */
  private async resolve(token: unknown): Promise<Resolved> {
    if (typeof token === 'string' && token) {
      const byToken = await this.user(token, 'bearer');
      if (byToken) return byToken;
    }
    if (this.conn.cookieToken) {
      const byCookie = await this.user(this.conn.cookieToken, 'cookie');
      if (byCookie?.ok) return byCookie;
      if (byCookie?.expired) {
        return { ok: false, expired: true, reason: 'The session cookie has expired; refresh it (POST /api/auth/refresh) and reconnect' };
      }
    }
    return { ok: true, identity: apiKeyIdentity(this.conn.apiKeyRole, this.deps.config.issuer) };
  }

  /**
   * A user access token whose session row is still live. Null for one of our API keys (supabase-js
   * sends the anon key as its access token when nobody is signed in): the caller falls back.
   */
  private async user(token: string, via: UserIdentity['via']): Promise<Resolved | null> {
    const { identities } = this.instance;
    const credential = await identities.classify(token, via);
    if (!credential.ok) {
      return credential.expired
        ? { ok: false, expired: true, reason: 'Token has expired; refresh the session and send a new access_token' }
        : { ok: false, expired: false, reason: 'Invalid access token' };
    }
    if (credential.identity.kind !== 'user') return null;
    if (!(await identities.liveUser(credential.identity))) return { ok: false, expired: false, reason: 'Session has ended; sign in again' };
    return credential;
  }

  private async join(frame: Frame): Promise<void> {
    // Before anything costly (token signature, session lookup): a join flood stops here.
    if (!this.instance.limits.takeJoin(this.conn.ip)) return this.reply(frame, 'error', { reason: limitReasons.joins });
    const joinRef = frame.joinRef ?? frame.ref ?? '';
    const old = this.channels.get(frame.topic);
    if (old) this.drop(old);
    if (this.channels.size >= maxChannelsPerSocket) return this.reply(frame, 'error', { reason: 'Too many channels on one socket' });
    const subTopic = frame.topic.replace(/^realtime:/, '');
    const config = obj(frame.payload.config);
    const broadcast = obj(config.broadcast);
    const isPrivate = config.private === true;

    const resolved = await this.resolve(frame.payload.access_token);
    if (!resolved.ok) return this.reply(frame, 'error', { reason: resolved.reason });
    const { identity } = resolved;

    const refusal = this.authorizeTopic(subTopic, isPrivate, identity);
    if (refusal) return this.reply(frame, 'error', { reason: refusal });

    const requested = Array.isArray(config.postgres_changes) ? (config.postgres_changes as unknown[]).map(obj) : [];
    const bindings: PgBinding[] = [];
    const echo: Array<Record<string, unknown>> = [];
    for (const r of requested) {
      const checked = await this.checkBinding(r, identity);
      if (typeof checked === 'string') return this.reply(frame, 'error', { reason: checked });
      bindings.push(checked);
      echo.push({ ...pickDefined(r, ['event', 'schema', 'table', 'filter']), id: checked.id });
    }

    const socket = this;
    const ch: JoinedChannel = {
      key: `${this.conn.id}:${joinRef}`,
      joinRef,
      topic: frame.topic,
      frameKey: sharedFrameKey(this.conn.vsn, joinRef, frame.topic),
      subTopic,
      isPrivate,
      broadcastSelf: broadcast.self === true,
      bindings,
      identity,
      expiryTimer: undefined,
      pending: [],
      replayedUpTo: 0,
      deliver(eventId, f) {
        // Nothing reaches a channel that left or was kicked (a revoked session), whatever was in flight.
        if (socket.channels.get(ch.topic) !== ch) return;
        if (ch.pending) ch.pending.push({ id: eventId, frame: f });
        else if (eventId > ch.replayedUpTo) socket.send(socket.frameFor(ch, f));
      },
      kick(message) {
        socket.kick(ch, message);
      },
    };
    // The checks above awaited: the socket may have closed, or a rejoin of this topic got here first.
    if (this.closed) return;
    const raced = this.channels.get(frame.topic);
    if (raced) this.drop(raced);
    this.channels.set(frame.topic, ch);
    clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
    this.hub.add(ch);
    this.armExpiry(ch);

    this.reply(frame, 'ok', { postgres_changes: echo });
    if (bindings.length) {
      this.system(ch, 'postgres_changes', 'ok', 'Subscribed to PostgreSQL');
    }
    const replay = obj(broadcast.replay);
    if (replay.since !== undefined || replay.after_id !== undefined) {
      await this.replay(ch, replay).catch((err: unknown) => {
        this.deps.log.error({ err }, 'realtime: replay failed');
        this.system(ch, 'system', 'error', 'Replay failed; live events follow. Reload the state to be sure.');
      });
    }
    const held = ch.pending ?? [];
    ch.pending = null;
    for (const p of held) ch.deliver(p.id, p.frame);
  }

  /**
   * Private topics are per user: `user:<sub>` is open to that user only (and the service key).
   * `user:*` topics are always private, so a public channel of the same name hears nothing.
   */
  private authorizeTopic(subTopic: string, isPrivate: boolean, identity: Identity): string | null {
    const personal = subTopic.startsWith(userTopic(''));
    if (personal && !isPrivate) return 'Unauthorized: user:<id> topics are private; join with config.private = true';
    if (!isPrivate || identity.claims.role === 'service_role') return null;
    if (!identity.sub) return 'Unauthorized: private channels need a signed-in user; join with access_token';
    if (subTopic !== userTopic(identity.sub)) return `Unauthorized: you may join only your own private topic user:${identity.sub}`;
    return null;
  }

  private async checkBinding(r: Record<string, unknown>, identity: Identity): Promise<PgBinding | string> {
    const event = String(r.event ?? '*').toUpperCase() as ChangeEvent;
    const schema = typeof r.schema === 'string' ? r.schema : 'public';
    const table = typeof r.table === 'string' && r.table !== '' ? r.table : '*';
    if (!changeEvents.has(event)) return `Invalid postgres_changes event ${String(r.event)}`;
    let filter = null;
    let rls = true;
    if (table !== '*') {
      const info = await this.hub.table(schema, table);
      if (!info || !info.published) {
        return `Unable to subscribe to changes on ${schema}.${table}: it is not published (select hallpass.realtime_publish('${schema}.${table}'))`;
      }
      rls = info.rls;
      if (typeof r.filter === 'string' && r.filter !== '') {
        const selectable = identity.claims.role === 'service_role' ? null : await this.hub.selectable(identity.claims.role, info);
        const checked = checkFilter(r.filter, info.columns, selectable);
        if (!checked.ok) return checked.reason;
        filter = checked.filter;
      }
    } else if (typeof r.filter === 'string' && r.filter !== '') {
      return 'A filter needs a table';
    }
    if (rls && identity.claims.role === 'anon') {
      return `Unauthorized: changes on ${schema}.${table === '*' ? '*' : table} are row-level secured; join with a user access_token`;
    }
    return { id: this.hub.bindingId({ event, schema, table }, typeof r.filter === 'string' ? r.filter : ''), event, schema, table, filter };
  }

  private async replay(ch: JoinedChannel, replay: Record<string, unknown>): Promise<void> {
    const retentionMs = this.deps.config.realtime.retentionSeconds * 1000;
    const sinceMs = typeof replay.since === 'number' ? replay.since : 0;
    const since = new Date(Math.max(sinceMs, this.deps.clock.now().getTime() - retentionMs));
    const afterId = typeof replay.after_id === 'number' || typeof replay.after_id === 'string' ? Number(replay.after_id) || 0 : 0;
    const limit = Math.min(typeof replay.limit === 'number' && replay.limit > 0 ? replay.limit : replayLimit, replayLimit);
    const tables = [...new Set(ch.bindings.map((b) => `${b.schema}.${b.table}`))];
    const rows = await readReplay(this.deps.db, { topic: ch.subTopic, tables, afterId, since, limit });
    // Sent straight to the socket (pending is still on, holding live events back).
    const direct: JoinedChannel = Object.create(ch, {
      deliver: { value: (_id: number, f: OutgoingFrame) => this.channels.get(ch.topic) === ch && this.send(this.frameFor(ch, f)) },
    });
    await this.hub.dispatch(rows, direct, true);
    ch.replayedUpTo = rows.at(-1)?.id ?? 0;
  }

  /** A fresh token for a joined channel: verified like a join's; a bad one closes the channel. */
  private async rebind(ch: JoinedChannel, frame: Frame): Promise<void> {
    const resolved = await this.resolve(frame.payload.access_token);
    if (!resolved.ok) return this.kick(ch, resolved.reason);
    const refusal =
      this.authorizeTopic(ch.subTopic, ch.isPrivate, resolved.identity) ??
      (ch.bindings.length && resolved.identity.claims.role === 'anon' ? 'Unauthorized: the new token is not a signed-in user' : null);
    if (refusal) return this.kick(ch, refusal);
    this.hub.rebind(ch, resolved.identity);
    this.armExpiry(ch);
    this.reply(frame, 'ok', {});
  }

  private async clientBroadcast(ch: JoinedChannel, frame: Frame): Promise<void> {
    // Made on the first broadcast (it starts full, as it would have at connect): most sockets never
    // send one, and 25,000 sockets each holding a bucket is memory for nothing.
    this.broadcasts ??= createBucket(this.deps.config.realtime.broadcastsPerSecond, () => this.deps.clock.now().getTime());
    if (!this.broadcasts.take()) {
      this.deps.metrics.limited('realtime_broadcast');
      return this.reply(frame, 'error', { reason: limitReasons.socketMessages });
    }
    if (!this.instance.limits.takeBroadcast(this.hub.topicSize(ch.subTopic))) {
      this.deps.metrics.limited('realtime_broadcast');
      return this.reply(frame, 'error', { reason: limitReasons.serverMessages });
    }
    const p = frame.payload;
    const event = typeof p.event === 'string' ? p.event : null;
    if (!event || event.length > 255) return this.reply(frame, 'error', { reason: 'A broadcast needs an event name' });
    if (ch.isPrivate && !ch.identity.sub && ch.identity.claims.role !== 'service_role') {
      return this.reply(frame, 'error', { reason: 'Unauthorized' });
    }
    // Through the log like every broadcast: every instance delivers it, and it can be replayed.
    await this.instance.logBroadcast({ topic: ch.subTopic, event, payload: p.payload ?? null, private: ch.isPrivate, origin: ch.key });
    // The ack realtime-js waits for when `broadcast.ack` is set (harmless otherwise).
    this.reply(frame, 'ok', {});
  }

  private armExpiry(ch: JoinedChannel): void {
    clearTimeout(ch.expiryTimer);
    ch.expiryTimer = undefined;
    const at = ch.identity.expiresAt;
    if (at === null) return;
    const ms = at - this.deps.clock.now().getTime();
    if (ms <= 0) return this.kick(ch, 'Token has expired');
    ch.expiryTimer = setTimeout(() => this.kick(ch, 'Token has expired'), Math.min(ms, 2 ** 31 - 1));
    ch.expiryTimer.unref();
  }

  private system(ch: JoinedChannel, extension: string, status: 'ok' | 'error', message: string): void {
    this.send({ joinRef: ch.joinRef, ref: null, topic: ch.topic, event: 'system', payload: { extension, status, message, channel: ch.subTopic } });
  }

  /** Tells the client why, then closes the channel (`phx_close`: realtime-js will not rejoin it). */
  kick(ch: JoinedChannel, message: string): void {
    if (this.channels.get(ch.topic) !== ch) return;
    this.system(ch, 'system', 'error', message);
    this.send({ joinRef: ch.joinRef, ref: null, topic: ch.topic, event: 'phx_close', payload: { reason: message } });
    this.drop(ch);
  }

  private drop(ch: JoinedChannel): void {
    clearTimeout(ch.expiryTimer);
    if (this.channels.get(ch.topic) === ch) this.channels.delete(ch.topic);
    this.hub.remove(ch);
  }
}

function uncorkSocket(socket: RealtimeSocket): void {
  socket.uncork();
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function pickDefined(r: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
}
