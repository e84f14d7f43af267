// A lean WebSocket client (RFC 6455) for load generation, in the spirit of bench/lean-http.ts: the
// realtime benches' client processes stand in for 10,000 browsers on other machines, but on this
// 2-core box they share the cores with the server and PostgreSQL, so what they spend per frame is
// taken from the system under test. `ws`'s client goes through net.Socket 'data', its Receiver (a
// Writable stream) and a 'message' event per frame. This one reads every socket of its process
// into one reused buffer (`onread`), parses the frames in place and hands a text frame's payload
// over as (buffer, start, end), valid during the call only; only a frame cut by the end of a read is
// copied out, to complete it from the next. Client frames are masked (a random mask per frame).
//
// Client process CPU per received frame, 5,000 sockets each sent a 644-byte frame 10 times a
// second: `ws` 9.1-9.4 µs (user 5.5-5.7, system 3.3-3.7), this parser on 'data' events 7.3-7.4 µs
// (user 3.5-4.1), on `onread` 5.8 µs (user 2.6-2.7, system 3.1-3.2); what is left is mostly the
// kernel's receive and libuv's read and callback per socket, one per frame at this rate.
//
// It speaks what the bench needs and refuses the rest loudly: an upgrade answer other than
// `HTTP/1.1 101`, a wrong Sec-WebSocket-Accept or any negotiated extension (no permessage-deflate),
// and any frame other than a whole unmasked text, close or ping frame (fragments, continuations,
// binary, unsolicited pongs, RSV bits, a masked server frame) destroy the socket with an error, so a
// change in the server's framing shows up as an error, never as a wrong figure.
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import net from 'node:net';

export interface LeanWsHandlers {
  /** The upgrade was accepted: `send` works from now on. */
  open(): void;
  /**
   * A text frame's payload is `data[start, end)`, arrived at `at` (ms, the clock of
   * `performance.timeOrigin + performance.now()`). `data` may be the process's read buffer: read
   * it during the call, do not keep it.
   */
  text(data: Buffer, start: number, end: number, at: number): void;
  /** The socket failed (or was refused); `close` follows. */
  error(err: Error): void;
  close(): void;
}

const acceptGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const headerEnd = Buffer.from('\r\n\r\n');
// Every socket of the process reads into this buffer: a read is parsed before the next can land.
const readBuffer = Buffer.allocUnsafe(1 << 16);
// Masks are taken 4 bytes at a time from a pool of random bytes, refilled when used up.
const maskPool = Buffer.allocUnsafe(4096);
let maskAt = maskPool.length;
// The bench's frames are a few KB; a length past this is a framing error, not a frame to wait for.
const maxFrameBytes = 64 << 20;

/** A client frame: FIN, `opcode`, masked `payload`, in one buffer for one write. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  if (maskAt === maskPool.length) {
    randomFillSync(maskPool);
    maskAt = 0;
  }
  maskPool.copy(frame, head, maskAt, maskAt + 4);
  maskAt += 4;
  for (let i = 0; i < n; i++) frame[head + 4 + i] = payload[i]! ^ frame[head + (i & 3)]!;
  return frame;
}

export class LeanWebSocket {
  /** Upgraded and neither closed, failed nor terminated. */
  open = false;
  private readonly socket: net.Socket;
  private readonly key = randomBytes(16).toString('base64');
  /** The upgrade answer so far (copied: it may span reads). */
  private head: Buffer | undefined;
  /** A frame cut by the end of a read: its first `tailLength` bytes. */
  private tail: Buffer | undefined;
  private tailLength = 0;
  /** The header length of the frame `frameSize` last sized. */
  private headLength = 0;
  private done = false;

  constructor(
    url: string,
    localAddress: string,
    private readonly on: LeanWsHandlers,
  ) {
    const u = new URL(url);
    if (u.protocol !== 'ws:' || u.hostname !== '127.0.0.1') throw new Error(`the lean WebSocket client talks ws:// to 127.0.0.1 only, not ${url}`);
    this.socket = net.connect({
      host: '127.0.0.1',
      port: Number(u.port || 80),
      localAddress,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (n, buf) => {
          this.read(buf as Buffer, n);
          return true;
        },
      },
    });
    this.socket.on('error', (err) => this.on.error(err));
    this.socket.on('close', () => {
      this.open = false;
      this.done = true;
      this.on.close();
    });
    this.socket.write(
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  }

  /** One text frame, masked. Ignored unless open (as the bench sends only to open sockets). */
  send(text: string): void {
    if (this.open) this.socket.write(clientFrame(0x1, Buffer.from(text)));
  }

  terminate(): void {
    this.open = false;
    this.done = true;
    this.socket.destroy();
  }

  private fail(message: string): void {
    this.open = false;
    this.done = true;
    this.socket.destroy(new Error(`lean WebSocket client: ${message}`));
  }

  private read(buf: Buffer, n: number): void {
    if (this.done) return;
    const at = performance.timeOrigin + performance.now();
    if (this.open) this.frames(buf, 0, n, at);
    else this.upgrade(buf, n, at);
  }

  private upgrade(buf: Buffer, n: number, at: number): void {
    const head = (this.head = this.head ? Buffer.concat([this.head, buf.subarray(0, n)]) : Buffer.from(buf.subarray(0, n)));
    const end = head.indexOf(headerEnd);
    if (end < 0) {
      if (head.length > 16_384) this.fail('an upgrade answer without an end of headers in 16 KB');
      return;
    }
    this.head = undefined;
    const text = head.toString('latin1', 0, end);
    if (!text.startsWith('HTTP/1.1 101 ')) return this.fail(`the upgrade was refused: ${text.split('\r\n', 1)[0]}`);
    if (/\r\nsec-websocket-extensions:/i.test(text)) return this.fail(`the server negotiated an extension, which the lean client does not speak: ${text}`);
    const accept = /\r\nsec-websocket-accept:[ \t]*(\S+)/i.exec(text)?.[1];
    const expected = createHash('sha1').update(this.key + acceptGuid).digest('base64');
    if (accept !== expected) return this.fail(`Sec-WebSocket-Accept ${accept ?? '(none)'}, expected ${expected}`);
    this.open = true;
    this.on.open();
    if (head.length > end + 4 && !this.done) this.frames(head, end + 4, head.length, at);
  }

  /**
   * The whole frame's size at `pos` (header and payload) once its header is in `buf[pos, end)`, or
   * -1 before; sets `headLength`. Refuses (throws) anything but a whole unmasked text, close or
   * ping frame.
   */
  private frameSize(buf: Buffer, pos: number, end: number): number {
    if (end - pos < 2) return -1;
    const b0 = buf[pos]!;
    const b1 = buf[pos + 1]!;
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) throw new Error(`a frame with RSV bits ${(b0 & 0x70) >> 4} (an extension?)`);
    if (b1 & 0x80) throw new Error('a masked frame from the server');
    if (opcode !== 0x1 && opcode !== 0x8 && opcode !== 0x9) throw new Error(`a frame of opcode 0x${opcode.toString(16)} (only text, close and ping are expected)`);
    if (!(b0 & 0x80)) throw new Error('a fragmented message (FIN not set)');
    let length = b1 & 0x7f;
    let head = 2;
    if (length === 126) {
      if (end - pos < 4) return -1;
      length = buf.readUInt16BE(pos + 2);
      head = 4;
    } else if (length === 127) {
      if (end - pos < 10) return -1;
      length = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
      head = 10;
    }
    if (opcode !== 0x1 && length > 125) throw new Error(`a control frame of ${length} bytes`);
    if (length > maxFrameBytes) throw new Error(`a frame of ${length} bytes`);
    this.headLength = head;
    return head + length;
  }

  private frames(buf: Buffer, pos: number, end: number, at: number): void {
    try {
      if (this.tail) {
        pos = this.completeTail(buf, pos, end, at);
        if (pos < 0) return;
      }
      while (pos < end && !this.done) {
        const size = this.frameSize(buf, pos, end);
        if (size < 0 || end - pos < size) {
          // Cut by the end of the read: keep its bytes (`buf` may be the shared read buffer).
          this.tail = Buffer.allocUnsafe(Math.max(size, 16));
          this.tailLength = buf.copy(this.tail, 0, pos, end);
          return;
        }
        this.frame(buf, pos, size, at);
        pos += size;
      }
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  /** Adds this read's first bytes to the cut frame; its end offset in `buf` once whole, else -1. */
  private completeTail(buf: Buffer, pos: number, end: number, at: number): number {
    let tail = this.tail!;
    // The header first, a byte at a time (at most 10): its length says how much more to take.
    let size = this.frameSize(tail, 0, this.tailLength);
    while (size < 0) {
      if (pos === end) return -1;
      tail[this.tailLength++] = buf[pos++]!;
      size = this.frameSize(tail, 0, this.tailLength);
    }
    if (tail.length < size) {
      const grown = Buffer.allocUnsafe(size);
      tail.copy(grown, 0, 0, this.tailLength);
      this.tail = tail = grown;
    }
    const take = Math.min(size - this.tailLength, end - pos);
    this.tailLength += buf.copy(tail, this.tailLength, pos, pos + take);
    if (this.tailLength < size) return -1;
    this.tail = undefined;
    this.tailLength = 0;
    this.frame(tail, 0, size, at);
    return pos + take;
  }

  /** One whole frame at `buf[pos, pos + size)`, sized (and checked) by `frameSize` just before. */
  private frame(buf: Buffer, pos: number, size: number, at: number): void {
    const opcode = buf[pos]! & 0x0f;
    const start = pos + this.headLength;
    if (opcode === 0x1) this.on.text(buf, start, pos + size, at);
    else if (opcode === 0x9) this.socket.write(clientFrame(0xa, buf.subarray(start, pos + size)));
    else {
      // Close: answer with the server's status code, then stop.
      this.open = false;
      this.done = true;
      this.socket.end(clientFrame(0x8, buf.subarray(start, Math.min(start + 2, pos + size))));
    }
  }
}
