// A lean HTTP/1.1 client for load generation: one keep-alive connection per worker, one request at
// a time on it, the request written as one buffer and the answer read by a minimal parser (status
// line, Content-Length, body). It stands in for browsers on other machines: on this 2-core box the
// load generator shares the cores with the server and PostgreSQL, and node:http's client costs about
// as much CPU per request as the server does, which would be charged to the data API's side of a
// ratio. What it does not do, it refuses loudly (chunked answers, a malformed status line), so a
// change in the server's framing shows up as an error, never as a wrong figure.
import net from 'node:net';

export interface LeanAnswer {
  status: number;
  body: string;
}

const headerEnd = Buffer.from('\r\n\r\n');

class LeanConnection {
  private socket: net.Socket | undefined;
  private chunks: Buffer[] = [];
  private size = 0;
  private pending: { resolve(a: LeanAnswer): void; reject(e: Error): void } | undefined;

  constructor(private readonly port: number) {}

  private open(): net.Socket {
    const socket = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true });
    socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (err: Error) => {
      if (this.socket === socket) this.socket = undefined;
      const p = this.pending;
      this.pending = undefined;
      this.chunks = [];
      this.size = 0;
      p?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })));
    return socket;
  }

  private onData(d: Buffer) {
    this.chunks.push(d);
    this.size += d.length;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const end = all.indexOf(headerEnd);
    if (end < 0) return;
    const head = all.toString('latin1', 0, end);
    if (!head.startsWith('HTTP/1.1 ')) return this.socket?.destroy(new Error(`not an HTTP/1.1 answer: ${head.slice(0, 40)}`));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!m) return this.socket?.destroy(new Error('an answer without Content-Length (chunked?) is not supported by the lean client'));
    const total = end + 4 + Number(m[1]);
    if (all.length < total) {
      this.chunks = [all];
      return;
    }
    if (all.length > total) return this.socket?.destroy(new Error('bytes after the answer: the lean client sends one request at a time'));
    this.chunks = [];
    this.size = 0;
    const p = this.pending;
    this.pending = undefined;
    if (/\r\nconnection:\s*close/i.test(head)) this.socket?.end();
    p?.resolve({ status: Number(head.slice(9, 12)), body: all.toString('utf8', end + 4, total) });
  }

  request(bytes: string): Promise<LeanAnswer> {
    if (this.pending) return Promise.reject(new Error('one request at a time per connection'));
    this.socket ??= this.open();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket!.write(bytes);
    });
  }

  close() {
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** `connections` keep-alive connections to 127.0.0.1:port; `request(w, ...)` uses connection w. */
export function leanHttp(port: number, connections: number) {
  const pool = Array.from({ length: connections }, () => new LeanConnection(port));
  return {
    request(w: number, method: string, path: string, headers: Record<string, string>, body: string | null): Promise<LeanAnswer> {
      let text = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n`;
      for (const k in headers) text += `${k}: ${headers[k]}\r\n`;
      if (body !== null) text += `content-length: ${Buffer.byteLength(body)}\r\n`;
      text += `\r\n${body ?? ''}`;
      return pool[w % connections]!.request(text);
    },
    close() {
      for (const c of pool) c.close();
    },
  };
}
