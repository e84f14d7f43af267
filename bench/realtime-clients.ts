// The realtime benches' load generator: a child process (forked by realtime.bench.ts) holding a
// share of the WebSocket clients, so that parsing tens of thousands of frames never runs on the
// event loop of the process that writes and times the commits, nor on the server's. Raw `ws`
// clients speaking Phoenix vsn 2.0.0 (10,000 supabase-js clients would measure supabase-js).
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

interface Join {
  topic: string;
  payload: Record<string, unknown>;
}
type Command =
  | { type: 'open'; url: string; localAddress: string; joins: Join[]; parallel: number; seqMarker: string; rowMarker?: string }
  | { type: 'collect' }
  | { type: 'close' };

const clients: WebSocket[] = [];
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

/** The decimal number right after the first `marker` at or after `from` in `data`, or -1. */
function numberAfter(data: Buffer, marker: Buffer, from: number): number {
  const at = data.indexOf(marker, from);
  if (at < 0) return -1;
  let n = -1;
  for (let i = at + marker.length; i < data.length; i++) {
    const d = data[i]! - 48;
    if (d < 0 || d > 9) break;
    n = n < 0 ? d : n * 10 + d;
  }
  return n;
}

const changeMarker = Buffer.from('"postgres_changes",{"ids"');

async function open(cmd: Extract<Command, { type: 'open' }>): Promise<void> {
  const seqMarker = Buffer.from(cmd.seqMarker);
  const rowMarker = cmd.rowMarker ? Buffer.from(cmd.rowMarker) : null;
  let joined = 0;
  const refused = new Map<string, number>();
  const connectOne = (i: number) =>
    new Promise<void>((resolve) => {
      const join = cmd.joins[i]!;
      // No UTF-8 validation of every frame: the fields the bench reads are ASCII and checked below.
      const ws = new WebSocket(cmd.url, { perMessageDeflate: false, localAddress: cmd.localAddress, skipUTF8Validation: true });
      clients[i] = ws;
      ws.on('open', () => ws.send(JSON.stringify(['1', '1', join.topic, 'phx_join', join.payload])));
      ws.on('message', (data: Buffer) => {
        const at = performance.timeOrigin + performance.now();
        // Only the fields the bench needs, read from the bytes: a full JSON.parse (or even a
        // string copy) of every frame would make this process the bottleneck at 100,000 frames a
        // second.
        const change = data.indexOf(changeMarker);
        if (change >= 0) {
          const seq = numberAfter(data, seqMarker, change);
          if (seq >= 0) record(seq, rowMarker ? numberAfter(data, rowMarker, change) : -1, i, at);
        } else if (data.toString('latin1', 0, 8) === '["1","1"') {
          const [, , , , payload] = JSON.parse(data.toString()) as [string, string, string, string, { status: string; response: { reason?: string } }];
          if (payload.status === 'ok') joined++;
          else refused.set(payload.response.reason ?? '?', (refused.get(payload.response.reason ?? '?') ?? 0) + 1);
          resolve();
        }
      });
      ws.on('error', (err) => {
        refused.set(err.message, (refused.get(err.message) ?? 0) + 1);
        resolve();
      });
      ws.on('close', () => resolve());
    });
  // Phoenix clients heartbeat every 25 s; the server closes sockets silent for longer (connecting
  // 25,000 can take longer than that, so it starts now).
  setInterval(() => {
    for (const ws of clients) if (ws?.readyState === ws?.OPEN) ws.send('[null,"hb","phoenix","heartbeat",{}]');
  }, 20_000).unref();
  for (let i = 0; i < cmd.joins.length; i += cmd.parallel) {
    await Promise.all(Array.from({ length: Math.min(cmd.parallel, cmd.joins.length - i) }, (_, k) => connectOne(i + k)));
  }
  const openCount = clients.filter((ws) => ws.readyState === ws.OPEN).length;
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
