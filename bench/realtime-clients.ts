// The realtime benches' load generator: a child process (forked by realtime.bench.ts) holding a
// share of the WebSocket clients, so that parsing tens of thousands of frames never runs on the
// event loop of the process that writes and times the commits, nor on the server's. Raw WebSocket
// clients speaking Phoenix vsn 2.0.0 (10,000 supabase-js clients would measure supabase-js): by
// default the lean client of bench/lean-ws.ts (these processes stand in for browsers on other
// machines, and on 2 cores what they spend is taken from the system under test: in the fan-out
// part at 10 updates/s, 9,000 frames an update, 23-24 ms of CPU per update against 52-53 with
// `ws`'s); BENCH_WS_CLIENT=ws uses the `ws` package's client instead, to compare.
//
// Parent -> child: {type: 'open', url, localAddress, joins: [{topic, payload}], parallel, seqMarker, rowMarker}
//                  {type: 'collect'} | {type: 'close'}
// Child -> parent: {type: 'opened', open, joined, refused: {reason: count}}
//                  {type: 'receipts', seq: Int32Array, row: Int32Array, socket: Int32Array, at: Float64Array}
// Receipts are postgres_changes frames: the event's sequence number (the digits after `seqMarker`
// in the frame), the changed row's id (the digits after `rowMarker`, -1 without one or when absent),
// the socket's index in `joins`, and when it arrived (ms, the same clock as the parent's
// `performance.timeOrigin + performance.now()`). The parent checks both against what it wrote.
import WebSocket from 'ws';
import { LeanWebSocket, type LeanWsHandlers } from './lean-ws.ts';

interface Join {
  topic: string;
  payload: Record<string, unknown>;
}
type Command =
  | { type: 'open'; url: string; localAddress: string; joins: Join[]; parallel: number; seqMarker: string; rowMarker?: string }
  | { type: 'collect' }
  | { type: 'close' };

/** What the bench does with a client, whichever it is. */
interface Client {
  readonly open: boolean;
  send(text: string): void;
  terminate(): void;
}

/** The `ws` package's client behind the lean client's handlers (BENCH_WS_CLIENT=ws). */
function wsClient(url: string, localAddress: string, on: LeanWsHandlers): Client {
  // No UTF-8 validation of every frame: the fields the bench reads are ASCII and checked below.
  const ws = new WebSocket(url, { perMessageDeflate: false, localAddress, skipUTF8Validation: true });
  ws.on('open', () => on.open());
  ws.on('message', (data: Buffer) => on.text(data, 0, data.length, performance.timeOrigin + performance.now()));
  ws.on('error', (err) => on.error(err));
  ws.on('close', () => on.close());
  return {
    get open() {
      return ws.readyState === ws.OPEN;
    },
    send: (text) => ws.send(text),
    terminate: () => ws.terminate(),
  };
}

const connect: (url: string, localAddress: string, on: LeanWsHandlers) => Client =
  process.env.BENCH_WS_CLIENT === 'ws' ? wsClient : (url, localAddress, on) => new LeanWebSocket(url, localAddress, on);

const clients: Client[] = [];
let seqs = new Int32Array(1 << 16);
let rows = new Int32Array(1 << 16);
let sockets = new Int32Array(1 << 16);
let times = new Float64Array(1 << 16);
let count = 0;

function record(seq: number, row: number, socket: number, at: number): void {
  if (count === seqs.length) {
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(a.length * 2);
      b.set(a);
      return b;
    };
    seqs = grow(seqs, (n) => new Int32Array(n));
    rows = grow(rows, (n) => new Int32Array(n));
    sockets = grow(sockets, (n) => new Int32Array(n));
    times = grow(times, (n) => new Float64Array(n));
  }
  seqs[count] = seq;
  rows[count] = row;
  sockets[count] = socket;
  times[count] = at;
  count++;
}

/** The decimal number right after the first `marker` in `data[from, end)`, or -1. */
function numberAfter(data: Buffer, marker: Buffer, from: number, end: number): number {
  const at = data.indexOf(marker, from);
  if (at < 0 || at + marker.length > end) return -1;
  let n = -1;
  for (let i = at + marker.length; i < end; i++) {
    const d = data[i]! - 48;
    if (d < 0 || d > 9) break;
    n = n < 0 ? d : n * 10 + d;
  }
  return n;
}

const changeMarker = Buffer.from('"postgres_changes",{"ids"');
const joinReplyPrefix = Buffer.from('["1","1"');

async function open(cmd: Extract<Command, { type: 'open' }>): Promise<void> {
  const seqMarker = Buffer.from(cmd.seqMarker);
  const rowMarker = cmd.rowMarker ? Buffer.from(cmd.rowMarker) : null;
  let joined = 0;
  let reported = false;
  const refused = new Map<string, number>();
  const connectOne = (i: number) =>
    new Promise<void>((resolve) => {
      const join = cmd.joins[i]!;
      const ws = connect(cmd.url, cmd.localAddress, {
        open: () => ws.send(JSON.stringify(['1', '1', join.topic, 'phx_join', join.payload])),
        text: (data, start, end, at) => {
          // Only the fields the bench needs, read from the bytes: a full JSON.parse (or even a
          // string copy) of every frame would make this process the bottleneck at 100,000 frames a
          // second.
          const change = data.indexOf(changeMarker, start);
          if (change >= 0 && change + changeMarker.length <= end) {
            const seq = numberAfter(data, seqMarker, change, end);
            if (seq >= 0) record(seq, rowMarker ? numberAfter(data, rowMarker, change, end) : -1, i, at);
          } else if (end - start >= joinReplyPrefix.length && data.compare(joinReplyPrefix, 0, joinReplyPrefix.length, start, start + joinReplyPrefix.length) === 0) {
            const [, , , , payload] = JSON.parse(data.toString('utf8', start, end)) as [string, string, string, string, { status: string; response: { reason?: string } }];
            if (payload.status === 'ok') joined++;
            else refused.set(payload.response.reason ?? '?', (refused.get(payload.response.reason ?? '?') ?? 0) + 1);
            resolve();
          }
        },
        error: (err) => {
          // Counted in `refused` until 'opened' is sent; after it, each new reason is printed once.
          if (reported && !refused.has(err.message)) console.error(`realtime bench client: socket ${i} failed after the joins: ${err.message}`);
          refused.set(err.message, (refused.get(err.message) ?? 0) + 1);
          resolve();
        },
        close: () => resolve(),
      });
      clients[i] = ws;
    });
  // Phoenix clients heartbeat every 25 s; the server closes sockets silent for longer (connecting
  // 25,000 can take longer than that, so it starts now).
  setInterval(() => {
    for (const ws of clients) if (ws?.open) ws.send('[null,"hb","phoenix","heartbeat",{}]');
  }, 20_000).unref();
  for (let i = 0; i < cmd.joins.length; i += cmd.parallel) {
    await Promise.all(Array.from({ length: Math.min(cmd.parallel, cmd.joins.length - i) }, (_, k) => connectOne(i + k)));
  }
  const openCount = clients.filter((ws) => ws.open).length;
  reported = true;
  process.send!({ type: 'opened', open: openCount, joined, refused: Object.fromEntries(refused) });
}

process.on('message', (cmd: Command) => {
  if (cmd.type === 'open') void open(cmd);
  else if (cmd.type === 'collect') {
    process.send!({ type: 'receipts', seq: seqs.slice(0, count), row: rows.slice(0, count), socket: sockets.slice(0, count), at: times.slice(0, count) });
    count = 0;
  } else {
    for (const ws of clients) ws.terminate();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
