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
 * bytes once, in `encoded`, and the same Buffer is handed to every socket that matches (a fan-out
 * to 10,000 sockets that joined alike is one encoding, not 10,000).
 */
export interface SharedFrame extends Omit<PreparedFrame, 'joinRef' | 'topic'> {
  encoded: Map<string, Buffer>;
}

/** What the hub hands a channel: a frame without the channel's own join ref and topic. */
export type OutgoingFrame = Omit<Frame, 'joinRef' | 'topic'> | Omit<PreparedFrame, 'joinRef' | 'topic'> | SharedFrame;

/** The bytes of a shared frame for one channel, encoded on first use. */
export function encodeShared(vsn: Vsn, joinRef: string | null, topic: string, f: SharedFrame): Buffer {
  const key = `${vsn}\u0000${joinRef ?? ''}\u0000${joinRef === null ? 'n' : 's'}\u0000${topic}`;
  let buf = f.encoded.get(key);
  if (!buf) f.encoded.set(key, (buf = Buffer.from(encodeFrame(vsn, { joinRef, ref: f.ref, topic, event: f.event, payloadJson: f.payloadJson }))));
  return buf;
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
