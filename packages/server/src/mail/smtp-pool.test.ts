import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { createSmtpPool, type SmtpPool } from './smtp-pool.ts';

interface Relay {
  url: string;
  connections: number;
  /** Recipients accepted, in order. */
  delivered: string[];
  close(): Promise<void>;
}

/** A real SMTP server; `auth` requires that user and password; `refuse` answers 550 for that recipient. */
async function relay(options: { auth?: { user: string; pass: string }; refuse?: string } = {}): Promise<Relay> {
  const state = { connections: 0, delivered: [] as string[] };
  const server = new SMTPServer({
    authOptional: !options.auth,
    allowInsecureAuth: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    onConnect(_session, callback) {
      state.connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (auth.username === options.auth?.user && auth.password === options.auth?.pass) return callback(null, { user: auth.username });
      callback(new Error('bad credentials'));
    },
    onRcptTo(address, _session, callback) {
      if (address.address === options.refuse) return callback(Object.assign(new Error('no such user'), { responseCode: 550 }));
      callback();
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        state.delivered.push(session.envelope.rcptTo[0]!.address);
        callback();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  const auth = options.auth ? `${options.auth.user}:${options.auth.pass}@` : '';
  return {
    url: `smtp://${auth}127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    delivered: state.delivered,
    // Closing the server also ends every open connection (after closeTimeout).
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const message = (to: string) => Buffer.from(`From: a@example.com\r\nTo: ${to}\r\nSubject: hi\r\n\r\n.a line that starts with a dot\r\n`);
const send = (pool: SmtpPool, to: string) => pool.send({ from: 'a@example.com', to: [to] }, message(to));

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('the SMTP connection pool', () => {
  it('reuses a few connections for many messages and logs in where the relay asks for it', async () => {
    const r = await relay({ auth: { user: 'mailer', pass: 's3cret' } });
    const pool = createSmtpPool(r.url, { maxConnections: 2 });
    open.push(r, pool);
    const to = Array.from({ length: 20 }, (_, i) => `user${i}@example.com`);
    await Promise.all(to.map((t) => send(pool, t)));
    expect([...r.delivered].sort()).toEqual([...to].sort());
    expect(r.connections).toBe(2);
  });

  it('fails a send with wrong credentials (the outbox retries it later)', async () => {
    const r = await relay({ auth: { user: 'mailer', pass: 's3cret' } });
    const pool = createSmtpPool(r.url.replace('s3cret', 'wrong'));
    open.push(r, pool);
    await expect(send(pool, 'ada@example.com')).rejects.toThrow();
    expect(r.delivered).toEqual([]);
  });

  it('replaces a connection after maxMessages', async () => {
    const r = await relay();
    const pool = createSmtpPool(r.url, { maxConnections: 1, maxMessages: 3 });
    open.push(r, pool);
    for (let i = 0; i < 7; i++) await send(pool, `u${i}@example.com`);
    expect(r.delivered).toHaveLength(7);
    expect(r.connections).toBe(3);
  });

  it('keeps the connection when the relay refuses one recipient, and the next message goes through on it', async () => {
    const r = await relay({ refuse: 'gone@example.com' });
    const pool = createSmtpPool(r.url, { maxConnections: 1 });
    open.push(r, pool);
    await expect(send(pool, 'gone@example.com')).rejects.toMatchObject({ responseCode: 550 });
    await send(pool, 'ada@example.com');
    expect(r.delivered).toEqual(['ada@example.com']);
    expect(r.connections).toBe(1);
  });

  it('opens a fresh connection when the relay went away and came back', async () => {
    const first = await relay();
    const pool = createSmtpPool(first.url, { maxConnections: 1 });
    open.push(pool);
    await send(pool, 'before@example.com');
    const port = new URL(first.url).port;
    await first.close();
    await expect(send(pool, 'during@example.com')).rejects.toThrow();
    // The same port again, as a restarted relay.
    const again = await relayOn(Number(port));
    open.push(again);
    await send(pool, 'after@example.com');
    expect(again.delivered).toEqual(['after@example.com']);
  });

  it('refuses sends once closed', async () => {
    const r = await relay();
    const pool = createSmtpPool(r.url);
    open.push(r);
    await send(pool, 'a@example.com');
    await pool.close();
    await expect(send(pool, 'b@example.com')).rejects.toThrow(/closed/);
  });
});

async function relayOn(port: number): Promise<{ delivered: string[]; close(): Promise<void> }> {
  const delivered: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => (delivered.push(session.envelope.rcptTo[0]!.address), callback()));
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { delivered, close: () => new Promise<void>((r) => server.close(() => r())) };
}
