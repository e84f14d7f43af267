import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';

export type RequestHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

export interface ListenOptions {
  host: string;
  port: number;
  /** PEM files; when set the port speaks https (HTTP/1.1 and HTTP/2 chosen by ALPN). */
  tls?: { certFile: string; keyFile: string } | undefined;
}

export interface Listener {
  /** `http(s)://host:port` as bound (port 0 resolved). */
  url: string;
  /** The server whose `upgrade` events carry WebSocket handshakes (realtime attaches there). */
  upgradeServer: HttpServer;
  /** Stops accepting connections; resolves once every open one has closed (graceful shutdown). */
  stopAccepting(): Promise<void>;
  /** Closes what is idle: HTTP/1.1 keep-alive connections between requests; HTTP/2 sessions get GOAWAY and end after their streams. */
  closeIdleConnections(): void;
  /** Cuts every connection now. */
  closeAllConnections(): void;
  /** Stops accepting and cuts every connection. */
  close(): Promise<void>;
}

// Every HTTP/2 connection with prior knowledge (h2c) starts with this preface.
const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Listens on one port for everything: HTTP/1.1 (the app, /oauth/token, WebSocket upgrades) and HTTP/2
 * (gRPC from the Scalekit SDK). Over http, a raw TCP server looks at the first bytes of each
 * connection and hands it to an HTTP/2 server when it starts with the h2c preface, else to an
 * HTTP/1.1 server (Node's http2 server cannot take HTTP/1.1 without TLS). Over https, one secure
 * HTTP/2 server with `allowHTTP1` lets ALPN decide.
 */
export async function listen(options: ListenOptions, handler: RequestHandler): Promise<Listener> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const sessions = new Set<Http2Session>();
  const trackSession = (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  };
  let front: NetServer;
  let upgradeServer: HttpServer;
  let http1: HttpServer | undefined;
  if (options.tls) {
    const secure = createSecureServer(
      { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile), allowHTTP1: true },
      handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
    );
    secure.on('secureConnection', track);
    secure.on('session', trackSession);
    front = secure;
    // With allowHTTP1, HTTP/1.1 connections run Node's http machinery on this server, upgrades included.
    upgradeServer = secure as unknown as HttpServer;
  } else {
    const h1 = createHttpServer(handler as (req: IncomingMessage, res: ServerResponse) => void);
    // Longer than the usual load balancer idle timeout (60 s), so the balancer closes idle connections
    // first and never sends a request into one we are closing.
    h1.keepAliveTimeout = 65_000;
    const h2 = createHttp2Server(handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
    h2.on('session', trackSession);
    front = createNetServer((socket) => {
      track(socket);
      routeByPreface(socket, h1, h2);
    });
    http1 = h1;
    upgradeServer = h1;
  }

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port, options.host, () => {
      front.off('error', reject);
      resolve();
    });
  });
  const { port } = front.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let stopped: Promise<void> | null = null;
  const stopAccepting = () => (stopped ??= new Promise<void>((resolve) => front.close(() => resolve())));
  const closeAllConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `${options.tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${port}`,
    upgradeServer,
    stopAccepting,
    closeIdleConnections() {
      http1?.closeIdleConnections();
      for (const session of sessions) session.close();
    },
    closeAllConnections,
    close() {
      const done = stopAccepting();
      closeAllConnections();
      return done;
    },
  };
}

/**
 * Reads until the bytes either are the h2c preface or cannot be, puts them back, and hands the socket
 * over. An HTTP/2 session reads what was put back itself; resuming the socket first would emit those
 * bytes as 'data' to nobody and the session would never see the preface.
 */
function routeByPreface(socket: Socket, http1: HttpServer, http2: ReturnType<typeof createHttp2Server>): void {
  let seen: Buffer = Buffer.alloc(0);
  // A connection that never says anything is dropped; after the handoff the servers' timeouts apply.
  socket.setTimeout(30_000, () => socket.destroy());
  const onError = () => socket.destroy();
  const onData = (chunk: Buffer) => {
    seen = seen.length ? Buffer.concat([seen, chunk]) : chunk;
    const n = Math.min(seen.length, h2Preface.length);
    const h2 = seen.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (h2 && seen.length < h2Preface.length) return;
    socket.off('data', onData);
    socket.off('error', onError);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(seen);
    if (h2) {
      http2.emit('connection', socket);
    } else {
      http1.emit('connection', socket);
      socket.resume();
    }
  };
  socket.on('error', onError);
  socket.on('data', onData);
}
