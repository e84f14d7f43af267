import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { parseConnectionUrl } from 'nodemailer/lib/shared';

/**
 * A few long-lived SMTP connections (nodemailer's SMTPConnection: TLS, STARTTLS, AUTH, pipelining
 * and dot-stuffing are its work), each used for up to `maxMessages` messages, then replaced.
 *
 * Why not nodemailer's own pool transport: its queue, rate-limit check, plugin chain and per-message
 * streams cost about 0.35 ms of CPU per message on top of the SMTP exchange itself (0.11 ms), which
 * was a fifth of a sign-in's server CPU. Retrying is not done here: a failed send throws, and the
 * outbox (outbox.ts) retries the row with backoff, so the pool only has to keep connections sound.
 */
export interface SmtpPool {
  /** Sends one message; resolves once the relay accepted it (250 after DATA), throws otherwise. */
  send(envelope: { from: string; to: string[] }, message: Buffer): Promise<void>;
  /** Quits idle connections and refuses new sends; sends on the wire finish first. */
  close(): Promise<void>;
}

interface Pooled {
  connection: SMTPConnection;
  messages: number;
  /** Set once the server closed it or it failed: never handed out again. */
  dead: boolean;
}

export interface SmtpPoolOptions {
  /** Connections at most (URL `maxConnections`). @default 10: with nodemailer's 5, mail queued behind the relay dialogue at 32 sign-ins at once (mail step p50 21 ms, 10 ms with 10). */
  maxConnections?: number;
  /** Messages per connection before it is replaced (URL `maxMessages`). @default 100 */
  maxMessages?: number;
}

export function createSmtpPool(url: string, options: SmtpPoolOptions = {}): SmtpPool {
  const parsed = parseConnectionUrl(url) as SMTPConnection.Options & { auth?: SMTPConnection.Credentials; maxConnections?: number; maxMessages?: number; pool?: unknown };
  const { auth, maxConnections: urlMax, maxMessages: urlMessages, pool: _pool, ...connectionOptions } = parsed;
  const maxConnections = options.maxConnections ?? urlMax ?? 10;
  const maxMessages = options.maxMessages ?? urlMessages ?? 100;
  const idle: Pooled[] = [];
  const waiting: Array<{ resolve: (p: Pooled) => void; reject: (e: Error) => void }> = [];
  let open = 0;
  let closed = false;

  const discard = (p: Pooled) => {
    if (p.dead) return;
    p.dead = true;
    open--;
    const at = idle.indexOf(p);
    if (at >= 0) idle.splice(at, 1);
    p.connection.close();
    // A slot came free: a waiting send may open a connection of its own.
    const next = closed ? undefined : waiting.shift();
    if (next) connect().then(next.resolve, next.reject);
  };

  const connect = async (): Promise<Pooled> => {
    open++;
    const connection = new SMTPConnection(connectionOptions);
    const p: Pooled = { connection, messages: 0, dead: false };
    // SMTPConnection reports a refused or dropped connection as an 'error' (or 'end') event, not
    // through connect's callback, so connecting settles on whichever comes first.
    let failed!: (err: Error) => void;
    const broken = new Promise<never>((_, reject) => (failed = reject));
    broken.catch(() => {});
    // The server may end an idle connection at any time (a timeout, a restart): drop it then, so
    // the next send opens a fresh one instead of failing on a dead socket.
    connection.on('error', (err) => (discard(p), failed(err)));
    connection.on('end', () => (discard(p), failed(new Error('the SMTP server closed the connection'))));
    try {
      await Promise.race([broken, new Promise<void>((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve())))]);
      if (auth && connection.allowsAuth) {
        await Promise.race([broken, new Promise<void>((resolve, reject) => connection.login(auth, (err) => (err ? reject(err) : resolve())))]);
      }
      return p;
    } catch (err) {
      discard(p);
      throw err;
    }
  };

  const acquire = (): Promise<Pooled> => {
    if (closed) return Promise.reject(new Error('the SMTP pool is closed'));
    const p = idle.pop();
    if (p) return Promise.resolve(p);
    if (open < maxConnections) return connect();
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };

  const release = (p: Pooled) => {
    if (p.dead) return;
    if (closed || p.messages >= maxMessages) {
      p.connection.quit();
      return discard(p);
    }
    const next = waiting.shift();
    if (next) next.resolve(p);
    else idle.push(p);
  };

  return {
    async send(envelope, message) {
      const p = await acquire();
      try {
        await new Promise<void>((resolve, reject) => p.connection.send(envelope, message, (err) => (err ? reject(err) : resolve())));
        p.messages++;
        release(p);
      } catch (err) {
        // The relay refused this one message (a 5xx/4xx to the envelope or the data) and the
        // connection is fine: reset the session and keep it. Anything else: the connection goes.
        const code = (err as SMTPConnection.SMTPError).code;
        if ((code === 'EENVELOPE' || code === 'EMESSAGE') && (err as SMTPConnection.SMTPError).responseCode !== 421 && !p.dead) {
          p.connection.reset((resetErr) => (resetErr ? discard(p) : release(p)));
        } else discard(p);
        throw err;
      }
    },
    async close() {
      closed = true;
      for (const w of waiting.splice(0)) w.reject(new Error('the SMTP pool is closed'));
      for (const p of [...idle]) {
        p.connection.quit();
        discard(p);
      }
    },
  };
}
