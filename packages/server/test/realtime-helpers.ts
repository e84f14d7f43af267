import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { resetRole, setClaims } from '@hallpass/db';
import { defaultTenantId } from '../src/passwordless/passwordless.service.ts';
import { upsertProfileOnLogin } from '../src/profiles/profiles.repository.ts';
import { startSession } from '../src/sessions/sessions.service.ts';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { signInWithCode, uniqueEmail, type TestBrowser, type TestServer } from './harness.ts';

export interface SignedIn {
  browser: TestBrowser;
  email: string;
  id: string;
  token: string;
}

export async function signIn(server: TestServer, prefix = 'rt'): Promise<SignedIn> {
  const browser = server.browser();
  const email = uniqueEmail(prefix);
  const { user } = await signInWithCode(server, browser, email);
  return { browser, email, id: user.id, token: accessCookie(browser)! };
}

export function accessCookie(browser: TestBrowser): string | undefined {
  return browser.cookies.get('hallpass-access');
}

/** A server to talk to: a test server, or another instance on its database and keys. */
export type Target = Pick<TestServer, 'url' | 'deps'>;

export const apiKey = (server: Target, role: 'anon' | 'service_role') => signApiKey(server.deps, role);

/** The unmodified supabase-js client, acting with `token` (a user access token) when given. */
export async function supabaseClient(server: Target, token?: string | (() => string)): Promise<SupabaseClient> {
  const anon = await apiKey(server, 'anon');
  return createClient(server.url, anon, {
    auth: { persistSession: false, autoRefreshToken: false },
    // Node 20 has no global WebSocket; realtime-js takes the constructor.
    realtime: { transport: WebSocket as never, heartbeatIntervalMs: 5000 },
    ...(token ? { accessToken: async () => (typeof token === 'function' ? token() : token) } : {}),
  });
}

/** Collects values and waits on them: tests wait for events, never sleep. */
export class Inbox<T> {
  readonly items: T[] = [];
  private waiters: Array<{ pred: (t: T) => boolean; resolve: (t: T) => void }> = [];

  push = (item: T): void => {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.pred(item)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(item);
      }
    }
  };

  next(pred: (t: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    const found = this.items.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching item within ${timeoutMs} ms; got ${JSON.stringify(this.items).slice(0, 2000)}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (t) => (clearTimeout(timer), resolve(t)) });
    });
  }
}

/** Subscribes and resolves on SUBSCRIBED, rejects on anything else. */
export function subscribed(channel: ReturnType<SupabaseClient['channel']>): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else reject(new Error(`${status}: ${err?.message ?? ''}`));
    });
  });
}

export type RawFrame = [string | null, string | null, string, string, any];

/** A bare Phoenix client (vsn 2.0.0 arrays unless told), for what supabase-js cannot show. */
export class RawSocket {
  readonly inbox = new Inbox<RawFrame>();
  private ref = 0;
  closed: Promise<number>;
  private constructor(
    readonly ws: WebSocket,
    readonly vsn: string,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const parsed = JSON.parse(data.toString()) as any;
      this.inbox.push(Array.isArray(parsed) ? (parsed as RawFrame) : [parsed.join_ref, parsed.ref, parsed.topic, parsed.event, parsed.payload]);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }

  static async open(
    server: Target,
    opts: { apikey?: string; vsn?: string; cookie?: string; origin?: string; headers?: Record<string, string> } = {},
  ): Promise<RawSocket> {
    const vsn = opts.vsn ?? '2.0.0';
    const url = new URL(`${server.url.replace('http', 'ws')}/realtime/v1/websocket`);
    url.searchParams.set('vsn', vsn);
    if (opts.apikey) url.searchParams.set('apikey', opts.apikey);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.origin) headers.origin = opts.origin;
    const ws = new WebSocket(url, { headers });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new RawSocket(ws, vsn);
  }

  /** Wraps a socket the test opened itself (already open). */
  static adopt(ws: WebSocket, vsn = '2.0.0'): RawSocket {
    return new RawSocket(ws, vsn);
  }

  send(joinRef: string | null, topic: string, event: string, payload: unknown): string {
    const ref = String(++this.ref);
    const frame = this.vsn === '1.0.0' ? { join_ref: joinRef, ref, topic, event, payload } : [joinRef, ref, topic, event, payload];
    this.ws.send(JSON.stringify(frame));
    return ref;
  }

  /** Sends and waits for the phx_reply to it. */
  async call(joinRef: string | null, topic: string, event: string, payload: unknown): Promise<{ status: string; response: any }> {
    const ref = this.send(joinRef, topic, event, payload);
    const reply = await this.inbox.next((f) => f[1] === ref && f[3] === 'phx_reply');
    return reply[4];
  }

  /** Joins and returns the reply; the join ref is the join's own ref. */
  async join(topic: string, config: Record<string, unknown>, accessToken?: string): Promise<{ joinRef: string; reply: { status: string; response: any } }> {
    const ref = String(this.ref + 1);
    const reply = await this.call(ref, topic, 'phx_join', { config, ...(accessToken ? { access_token: accessToken } : {}) });
    return { joinRef: ref, reply };
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * Users with live sessions, made directly (profile + session + access token) rather than through
 * the mail round trip: for tests and benches that need many of them.
 */
export async function createUsers(deps: TestServer['deps'], n: number, prefix = 'many'): Promise<Array<{ id: string; email: string; token: string; sessionId: string }>> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const email = uniqueEmail(`${prefix}${i}`);
    const issued = await deps.db.transaction(async (tx) => {
      await setClaims(tx, { role: 'service_role' });
      const { profile } = await upsertProfileOnLogin(tx, defaultTenantId, email, new Date());
      await resetRole(tx);
      return startSession(deps, tx, { profile, method: 'otp', userAgent: null, ip: null });
    });
    out.push({ id: issued.claims.sub, email, token: issued.accessToken, sessionId: issued.session.id });
  }
  return out;
}
