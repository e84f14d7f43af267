/**
 * Phoenix channel frames as @supabase/realtime-js speaks them. vsn 2.0.0: text frames are JSON
 * arrays `[join_ref, ref, topic, event, payload]`, and a client broadcast may arrive as a binary
 * "user broadcast push" (kind 3). vsn 1.0.0: JSON objects `{join_ref, ref, topic, event, payload}`.
 */
export type Vsn = '1.0.0' | '2.0.0';

export interface Frame {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

/**
 * A frame whose payload is already JSON text: a change delivered to 10,000 sockets is serialised
 * once per (event, visible columns), and each socket only wraps it in its own topic and join ref.
 */
export interface PreparedFrame extends Omit<Frame, 'payload'> {
  payloadJson: string;
}

/**
 * A prepared frame many channels receive alike: each distinct (vsn, join ref, topic) is encoded to
 * bytes once, in `encoded`, and the same bytes are handed to every socket that matches (a fan-out
 * to 10,000 sockets that joined alike is one encoding, not 10,000).
 */
export interface SharedFrame extends Omit<PreparedFrame, 'joinRef' | 'topic'> {
  encoded: Map<string, WireFrame>;
}

/**
 * One Phoenix message as a complete WebSocket text frame the way a server sends it (final, not
 * masked: RFC 6455 section 5.2), so the same bytes are right for every socket: `wire` is header and
 * payload in one Buffer, `payload` the message alone (a view of it).
 */
export interface WireFrame {
  readonly wire: Buffer;
  readonly payload: Buffer;
}

/** What the hub hands a channel: a frame without the channel's own join ref and topic. */
export type OutgoingFrame = Omit<Frame, 'joinRef' | 'topic'> | Omit<PreparedFrame, 'joinRef' | 'topic'> | SharedFrame;

/** The key of a channel's copy in `SharedFrame.encoded`: fixed for a channel, so built once per channel. */
export function sharedFrameKey(vsn: Vsn, joinRef: string | null, topic: string): string {
  return `${vsn}\u0000${joinRef ?? ''}\u0000${joinRef === null ? 'n' : 's'}\u0000${topic}`;
}

/** The frame of a shared frame for one channel (`key` from sharedFrameKey), encoded on first use. */
export function encodeShared(vsn: Vsn, key: string, joinRef: string | null, topic: string, f: SharedFrame): WireFrame {
  let frame = f.encoded.get(key);
  if (!frame) f.encoded.set(key, (frame = wireFrame(encodeFrame(vsn, { joinRef, ref: f.ref, topic, event: f.event, payloadJson: f.payloadJson }))));
  return frame;
}

/** A text message as one final, unmasked WebSocket frame (FIN + opcode 1, then its length). */
export function wireFrame(text: string): WireFrame {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const wire = Buffer.allocUnsafe(header + length);
  wire[0] = 0x81;
  if (header === 2) wire[1] = length;
  else if (header === 4) {
    wire[1] = 126;
    wire.writeUInt16BE(length, 2);
  } else {
    wire[1] = 127;
    wire.writeBigUInt64BE(BigInt(length), 2);
  }
  wire.write(text, header, 'utf8');
  return { wire, payload: wire.subarray(header) };
}

export function encodeFrame(vsn: Vsn, f: Frame | PreparedFrame): string {
  if ('payloadJson' in f) {
    const s = JSON.stringify;
    if (vsn === '1.0.0') return `{"join_ref":${s(f.joinRef)},"ref":${s(f.ref)},"topic":${s(f.topic)},"event":${s(f.event)},"payload":${f.payloadJson}}`;
    return `[${s(f.joinRef)},${s(f.ref)},${s(f.topic)},${s(f.event)},${f.payloadJson}]`;
  }
  if (vsn === '1.0.0') return JSON.stringify({ join_ref: f.joinRef, ref: f.ref, topic: f.topic, event: f.event, payload: f.payload });
  return JSON.stringify([f.joinRef, f.ref, f.topic, f.event, f.payload]);
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A text frame, or null when it is not a well-formed frame (the caller ignores it). */
export function decodeText(vsn: Vsn, text: string): Frame | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  let parts: unknown[];
  if (Array.isArray(raw)) parts = raw;
  else if (isObject(raw)) parts = [raw.join_ref, raw.ref, raw.topic, raw.event, raw.payload];
  else return null;
  if (vsn === '2.0.0' && !Array.isArray(raw)) return null;
  const [joinRef, ref, topic, event, payload] = parts;
  if (typeof topic !== 'string' || typeof event !== 'string') return null;
  return { joinRef: str(joinRef), ref: str(ref), topic, event, payload: isObject(payload) ? payload : {} };
}

const userBroadcastPush = 3;
const jsonEncoding = 1;

/**
 * A binary frame. Only kind 3 (user broadcast push) is meaningful from a client: header bytes
 * kind, join_ref/ref/topic/event/metadata lengths and the payload encoding, then those strings,
 * then the payload (JSON or raw bytes). Anything malformed yields null, never an exception.
 */
export function decodeBinary(buf: Buffer): Frame | null {
  if (buf.length < 7 || buf[0] !== userBroadcastPush) return null;
  const lens = [buf[1]!, buf[2]!, buf[3]!, buf[4]!, buf[5]!];
  const encoding = buf[6]!;
  let offset = 7;
  const parts: string[] = [];
  for (const len of lens) {
    if (offset + len > buf.length) return null;
    parts.push(buf.subarray(offset, offset + len).toString('utf8'));
    offset += len;
  }
  const [joinRef, ref, topic, event, metadata] = parts as [string, string, string, string, string];
  const body = buf.subarray(offset);
  let payload: unknown;
  try {
    // Binary payloads are carried as base64 so they survive the JSON log and text frames.
    payload = encoding === jsonEncoding ? JSON.parse(body.toString('utf8')) : { binary: body.toString('base64') };
  } catch {
    return null;
  }
  const frame: Frame = {
    joinRef: joinRef || null,
    ref: ref || null,
    topic,
    event: 'broadcast',
    payload: { type: 'broadcast', event, payload },
  };
  if (metadata) {
    try {
      const meta: unknown = JSON.parse(metadata);
      if (isObject(meta)) frame.payload.meta = meta;
    } catch {
      return null;
    }
  }
  return frame;
}
