import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { parse as parseCookies } from 'hono/utils/cookie';
import { WebSocketServer, type WebSocket } from 'ws';
import { createBatcher } from '@hallpass/db';
import type { ErrorCode } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { clientAddress } from '../http/client-ip.ts';
import { cookieNames } from '../http/cookies.ts';
import { createIdentityResolver } from '../sessions/identity.ts';
import { Hub } from './realtime.hub.ts';
import { limitReasons, RealtimeLimits } from './realtime.limits.ts';
import { startLogReader } from './realtime.log-reader.ts';
import { endedSessions, insertBroadcasts, pruneEvents, wakeRealtimeReaders, type BroadcastInput } from './realtime.repository.ts';
import { RealtimeSocket, type Connection, type SocketsShared } from './realtime.socket.ts';

export const realtimePath = '/realtime/v1/websocket';

export interface RealtimeServer {
  readonly hub: Hub;
  /** Open sockets on this instance. */
  socketCount(): number;
  /** Deletes log rows older than the retention window now (also runs on a schedule). */
  prune(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Attaches the Supabase-Realtime-compatible endpoint to the HTTP server: WebSocket upgrades on
 * /realtime/v1/websocket, a reader that follows the event log (woken by NOTIFY from any instance),
 * session revocation (NOTIFY hallpass_session_revoked), a session liveness sweep, idle-socket
 * cleanup and log pruning.
 */
export async function startRealtime(deps: Deps, server: Server): Promise<RealtimeServer> {
  const { config, db, log } = deps;
  const hub = new Hub(db, log, deps.metrics);
  const sockets = new Set<RealtimeSocket>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.realtime.maxMessageBytes });
  const limits = new RealtimeLimits(config.realtime, () => deps.clock.now().getTime());
  const logBatch = createBatcher(async (list: BroadcastInput[]) => {
    await insertBroadcasts(db, list);
    return list.map(() => undefined);
  });
  const identities = createIdentityResolver(deps);
  const shared: SocketsShared = { limits, identities, logBroadcast: logBatch };

  const reader = await startLogReader(db, {
    onEvents: (rows) => hub.accept(rows),
    onError: (err) => log.error({ err }, 'realtime: reading the event log failed'),
  });
  const instanceId = randomUUID();
  let readSoon: NodeJS.Timeout | null = null;
  const wakeOthers = coalescedWake(() => wakeRealtimeReaders(db, instanceId), (err) => log.warn({ err }, 'realtime: waking other instances failed'));
  const unlisten = [
    // A lost listener connection may have dropped notifications: read again once it is back. Our own
    // post-commit wake comes back to us too; this instance already read for it.
    await db.listen('hallpass_realtime', (origin) => origin !== instanceId && reader.poke(), () => reader.poke()),
    // A sign-in committed events without notifying (migration 0011): read, and tell the others. The
    // read waits a few ms so that a burst of sign-ins is one read, not one each.
    deps.realtimeWritten.subscribe(() => {
      readSoon ??= setTimeout(() => {
        readSoon = null;
        reader.poke();
      }, 5);
      wakeOthers.wake();
    }),
    await db.listen('hallpass_session_revoked', (sessionId) => {
      hub.endSession(sessionId, 'Session revoked; sign in again');
    }),
  ];

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== realtimePath && url.pathname !== `${realtimePath}/`) {
      // Ours is the only upgrade handler unless a feature adds another: then the path is theirs.
      if (server.listenerCount('upgrade') === 1) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    // Counted before anything costly (the apikey's signature): a flood from one address stops here.
    // The address is decided as for HTTP requests (clientIp), so TRUST_PROXY means the same here.
    const forwarded = req.headers['x-forwarded-for'];
    const ip = clientAddress(config.trustProxy, req.socket.remoteAddress, Array.isArray(forwarded) ? forwarded.join(', ') : forwarded);
    if (!limits.openSocket(ip)) {
      refuse(socket, '429 Too Many Requests', 'too_many_connections', limitReasons.sockets);
      return;
    }
    accept(req, url, ip)
      .then((conn) => {
        if (!conn) {
          limits.closeSocket(ip);
          refuse(socket, '401 Unauthorized', 'unauthenticated', 'Invalid apikey.');
          return;
        }
        attach(req, socket, head, ip, conn);
      })
      .catch((err: unknown) => {
        limits.closeSocket(ip);
        log.error({ err }, 'realtime: upgrade failed');
        socket.destroy();
      });
  };

  // Its own function, so the listeners that live as long as the socket close over the connection
  // only: a closure in onUpgrade would keep the upgrade request (headers and all) for every socket.
  const attach = (req: IncomingMessage, socket: Duplex, head: Buffer, ip: string | null, conn: Connection) => {
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const s = new RealtimeSocket(deps, hub, ws, conn, shared, socket);
      sockets.add(s);
      ws.on('close', () => {
        sockets.delete(s);
        limits.closeSocket(ip);
      });
    });
  };

  const accept = async (req: IncomingMessage, url: URL, ip: string | null): Promise<Connection | null> => {
    const apikey = url.searchParams.get('apikey');
    const role = apikey ? await identities.apiKeyRole(apikey) : 'anon';
    if (!role) return null;
    // The session cookie counts only from our own pages (or a non-browser client, which sends no
    // Origin): a page elsewhere on the same site must not ride the user's cookie into a socket.
    const origin = req.headers.origin;
    const cookieAllowed = origin === undefined || config.allowedOrigins.includes(origin);
    const cookies = req.headers.cookie && cookieAllowed ? parseCookies(req.headers.cookie) : {};
    return {
      id: randomUUID(),
      ip,
      vsn: url.searchParams.get('vsn') === '2.0.0' ? '2.0.0' : '1.0.0',
      apiKeyRole: role,
      cookieToken: cookies[cookieNames(config).access],
    };
  };
  server.on('upgrade', onUpgrade);
  deps.metrics.addSources({ realtime: () => ({ sockets: sockets.size, channels: hub.channelCount, queued: hub.queuedCount }) });

  const every = (seconds: number, fn: () => Promise<unknown>) => {
    const t = setInterval(() => void fn().catch((err: unknown) => log.warn({ err }, 'realtime: scheduled task failed')), seconds * 1000);
    t.unref();
    return t;
  };
  const prune = () => pruneEvents(db, new Date(deps.clock.now().getTime() - config.realtime.retentionSeconds * 1000));
  const timers = [
    every(config.realtime.pruneIntervalSeconds, prune),
    // Revocation arrives by NOTIFY at once; this sweep also catches sessions that simply expired
    // and any notification lost while the listener reconnected.
    every(config.realtime.sessionCheckSeconds, async () => {
      for (const id of await endedSessions(db, hub.sessionIds(), deps.clock.now())) hub.endSession(id, 'Session has ended; sign in again');
    }),
    // Phoenix clients heartbeat every 25 s; a socket silent for two intervals is gone.
    every(30, async () => {
      const cutoff = Date.now() - 60_000;
      for (const s of sockets) if (s.lastSeen < cutoff) s.terminate();
      limits.sweep();
    }),
  ];

  return {
    hub,
    socketCount: () => sockets.size,
    prune,
    async close() {
      server.off('upgrade', onUpgrade);
      for (const t of timers) clearInterval(t);
      // 1001 "going away", as Phoenix sends when a node stops: realtime-js reconnects (through the
      // balancer, to another instance) and rejoins its channels, resuming from the last event it saw.
      const closed = [...wss.clients].map((ws) => new Promise<void>((resolve) => (ws.readyState === ws.CLOSED ? resolve() : ws.once('close', () => resolve()))));
      for (const ws of wss.clients) ws.close(1001, 'server shutting down; reconnect');
      await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 1000).unref())]);
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      // Clients are told first (above); the reader and listeners stop after.
      for (const u of unlisten) await u();
      await wakeOthers.stop();
      if (readSoon) clearTimeout(readSoon);
      await reader.stop();
      // RLS calls in flight finish before the database is closed under them.
      await hub.idle();
    },
  };
}

/** Answers a refused upgrade in the error shape of the HTTP API and closes the connection. */
function refuse(socket: Duplex, status: string, code: ErrorCode, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  const retry = status.startsWith('429') ? 'Retry-After: 10\r\n' : '';
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`);
}

/**
 * Runs `send` when woken, at most one at a time: wakes while one runs ask for exactly one more after
 * it (so the last wake is always followed by a send), spaced by `gapMs` so that a steady stream of
 * sign-ins costs at most 1000 / gapMs notifications a second, not one each.
 */
function coalescedWake(send: () => Promise<void>, onError: (err: unknown) => void, gapMs = 50) {
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  const run = async () => {
    do {
      again = false;
      await send().catch(onError);
      await new Promise((r) => setTimeout(r, gapMs).unref());
    } while (again && !stopped);
    running = null;
  };
  return {
    wake() {
      if (stopped) return;
      if (running) again = true;
      else running = run();
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}
