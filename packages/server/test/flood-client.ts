/**
 * The attacker of attack-realtime-flood.test.ts, in its own process so that its work (building and
 * reading thousands of frames) does not run on the event loop of the server under test. Bounded:
 * `sockets` upgrade attempts, then `broadcasters` sockets join one topic and each sends `perSocket`
 * broadcasts at once. Only to 127.0.0.1. Prints `start` before the first socket, `burst` when the
 * broadcasts start, then one JSON line.
 *
 * Usage: tsx flood-client.ts <ws url> <apikey> <x-forwarded-for> <sockets> <broadcasters> <perSocket>
 */
import type WebSocket from 'ws';
import { tryUpgrade } from './ws-upgrade.ts';

const [url, apikey, forwardedFor, sockets, broadcasters, perSocket] = process.argv.slice(2) as [string, string, string, string, string, string];
if (!/^ws:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error('flood-client only talks to 127.0.0.1');
const target = `${url}?vsn=2.0.0&apikey=${apikey}`;

const open = () => tryUpgrade(target, { 'x-forwarded-for': forwardedFor });

/** A Phoenix client over one socket: sends frames and resolves each with its phx_reply. */
function channel(ws: WebSocket) {
  let ref = 0;
  const waiting = new Map<string, (reply: { status: string; response: { reason?: string } }) => void>();
  ws.on('message', (data) => {
    const [, r, , event, payload] = JSON.parse(data.toString()) as [string | null, string | null, string, string, never];
    if (event === 'phx_reply' && r !== null) waiting.get(r)?.(payload), waiting.delete(r);
  });
  return (joinRef: string | null, topic: string, event: string, payload: unknown) => {
    const r = String(++ref);
    ws.send(JSON.stringify([joinRef ?? r, r, topic, event, payload]));
    return new Promise<{ ref: string; status: string; response: { reason?: string } }>((resolve) => waiting.set(r, (reply) => resolve({ ref: r, ...reply })));
  };
}

console.log('start');
const attempts = await Promise.all(Array.from({ length: Number(sockets) }, open));
const opened = attempts.flatMap((a) => ('ws' in a ? [a.ws] : []));
const refused = attempts.flatMap((a) => ('ws' in a ? [] : [a]));
const topic = `realtime:flood-${process.pid}`;
const calls = opened.slice(0, Number(broadcasters)).map(channel);

// Join at once; the refused retry as the join bucket refills (bounded).
const joinRefusals: string[] = [];
const joinRefs: string[] = [];
const first = await Promise.all(calls.map((call) => call(null, topic, 'phx_join', { config: {} })));
for (const [i, call] of calls.entries()) {
  let reply = first[i]!;
  for (let tries = 0; reply.status !== 'ok' && tries < 50; tries++) {
    joinRefusals.push(reply.response.reason ?? '');
    await new Promise((r) => setTimeout(r, 100));
    reply = await call(null, topic, 'phx_join', { config: {} });
  }
  joinRefs[i] = reply.ref;
}

console.log('burst');
const started = performance.now();
const replies = await Promise.all(
  calls.flatMap((call, i) =>
    Array.from({ length: Number(perSocket) }, (_, n) => call(joinRefs[i]!, topic, 'broadcast', { type: 'broadcast', event: 'spam', payload: { n } })),
  ),
);
const elapsedMs = performance.now() - started;
const reasons: Record<string, number> = {};
for (const r of replies) if (r.status !== 'ok') reasons[r.response.reason ?? ''] = (reasons[r.response.reason ?? ''] ?? 0) + 1;
console.log(
  JSON.stringify({
    opened: opened.length,
    refused,
    joinRefusals,
    accepted: replies.filter((r) => r.status === 'ok').length,
    reasons,
    elapsedMs,
  }),
);
for (const ws of opened) ws.close();
