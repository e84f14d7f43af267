import type { DeviceSession, PublicConfig, SendResponse, SessionResponse, User, VerifyResponse } from '@hallpass/protocol';
import { createDataApi } from './data.ts';
import { HallpassError } from './errors.ts';
import { createEmitter } from './events.ts';
import { createHttp, type FetchLike } from './http.ts';
import { createRealtime, type ProfileHandlers, type ProfileSubscription } from './realtime.ts';
import { browserTabEnvironment, createTabs, type TabEnvironment } from './tabs.ts';

export type AuthEvent = 'INITIAL_SESSION' | 'SIGNED_IN' | 'SIGNED_OUT' | 'TOKEN_REFRESHED' | 'USER_UPDATED';

export interface AuthState {
  event: AuthEvent;
  /** The signed-in user and session, or null when signed out. */
  session: SessionResponse | null;
}

export interface HallpassClientOptions {
  /** Origin of the Hallpass server. @default '' (the page's own origin) */
  baseUrl?: string;
  /** @default globalThis.fetch */
  fetch?: FetchLike;
  /** Public settings; read from `GET /api/config` when not given. */
  config?: PublicConfig;
  /** Refresh the access token this many seconds before it expires. @default 60 */
  refreshMarginSeconds?: number;
  /**
   * How often to re-check the session while signed in, so a device signed out elsewhere notices.
   * Realtime brings such news sooner; this is the fallback. @default 30_000
   */
  sessionCheckIntervalMs?: number;
  /** Cross-tab coordination (locks, storage, BroadcastChannel). @default the browser's */
  tabs?: TabEnvironment;
  /** WebSocket constructor for realtime (non-browser runtimes). */
  webSocket?: unknown;
}

const signedOutCodes = new Set(['unauthenticated', 'session_expired']);

/**
 * The Hallpass browser SDK. Methods throw {@link HallpassError} with the server's `code`.
 * @example
 * const hallpass = createHallpassClient()
 * const { authRequestId } = await hallpass.send('ada@example.com')
 * await hallpass.verify(authRequestId, '123456')
 * hallpass.onAuthStateChange(({ event, session }) => render(session?.user))
 */
export function createHallpassClient(options: HallpassClientOptions = {}) {
  const baseUrl = options.baseUrl ?? '';
  const http = createHttp({ baseUrl, fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)) });
  const tabs = createTabs(options.tabs ?? browserTabEnvironment());
  const authEvents = createEmitter<AuthState>();
  const marginMs = (options.refreshMarginSeconds ?? 60) * 1000;
  const checkEvery = options.sessionCheckIntervalMs ?? 30_000;

  let current: SessionResponse | null = null;
  let known = false;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let checkTimer: ReturnType<typeof setInterval> | undefined;
  let configPromise: Promise<PublicConfig> | null = options.config ? Promise.resolve(options.config) : null;
  let realtime: ReturnType<typeof createRealtime> | null = null;

  const config = () => (configPromise ??= http<PublicConfig>('GET', '/api/config').catch((e) => {
    configPromise = null;
    throw e;
  }));

  function setState(event: AuthEvent, session: SessionResponse | null): void {
    current = session;
    known = true;
    schedule();
    authEvents.emit({ event, session });
  }

  function schedule(): void {
    clearTimeout(refreshTimer);
    if (!current) {
      clearInterval(checkTimer);
      checkTimer = undefined;
      return;
    }
    const due = Date.parse(current.accessTokenExpiresAt) - marginMs - Date.now();
    refreshTimer = setTimeout(() => void refresh().catch(() => {}), Math.max(due, 1000));
    checkTimer ??= setInterval(() => void session().catch(() => {}), checkEvery);
  }

  /** Calls an endpoint that needs a session; a 401 means this device is signed out now. */
  async function authed<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await http<T>(method, path, body);
    } catch (err) {
      if (err instanceof HallpassError && signedOutCodes.has(err.code) && current) {
        setState('SIGNED_OUT', null);
        tabs.post({ type: 'signed_out' });
      }
      throw err;
    }
  }

  /** The current session from the server, or null when signed out. Emits on any change. */
  async function session(): Promise<SessionResponse | null> {
    let next: SessionResponse | null;
    try {
      next = await http<SessionResponse>('GET', '/api/auth/session');
    } catch (err) {
      if (!(err instanceof HallpassError && signedOutCodes.has(err.code))) throw err;
      next = null;
    }
    const wasKnown = known;
    const before = current;
    if (!wasKnown) setState('INITIAL_SESSION', next);
    else if (!next && before) setState('SIGNED_OUT', null);
    else if (next && !before) setState('SIGNED_IN', next);
    else if (next && before && next.session.id !== before.session.id) setState('SIGNED_IN', next);
    else {
      current = next;
      schedule();
    }
    return next;
  }

  /**
   * Renews the access token (and rotates the refresh token). With several tabs open, exactly one of
   * them asks the server; the others adopt its result.
   */
  async function refresh(): Promise<void> {
    // The token this tab knows now: if the server's is another one when our turn comes, a tab
    // renewed it meanwhile and we adopt it. Ids, not times: the browser's clock may be off.
    const known = current?.accessTokenId ?? null;
    try {
      const token = await tabs.refreshOnce(
        async () => {
          const r = await http<{ expiresAt: string; accessTokenId?: string | null }>('POST', '/api/auth/refresh');
          return { expiresAt: r.expiresAt, tokenId: r.accessTokenId ?? null };
        },
        async () => {
          if (!known) return null;
          const s = await http<SessionResponse>('GET', '/api/auth/session');
          return s.accessTokenId && s.accessTokenId !== known ? { expiresAt: s.accessTokenExpiresAt, tokenId: s.accessTokenId } : null;
        },
      );
      if (current) {
        current = { ...current, accessTokenExpiresAt: token.expiresAt, accessTokenId: token.tokenId };
        setState('TOKEN_REFRESHED', current);
      }
    } catch (err) {
      if (err instanceof HallpassError && signedOutCodes.has(err.code) && current) setState('SIGNED_OUT', null);
      throw err;
    }
  }

  async function signedIn(res: VerifyResponse): Promise<VerifyResponse> {
    tabs.post({ type: 'signed_in' });
    await session();
    return res;
  }

  tabs.onMessage((m) => {
    if (m.type === 'refreshed' && current) {
      current = { ...current, accessTokenExpiresAt: m.expiresAt, accessTokenId: m.tokenId };
      schedule();
    } else if (m.type === 'signed_out' || m.type === 'signed_in') {
      void session().catch(() => {});
    }
  });

  const data = createDataApi(http, async () => {
    const c = await config();
    return { restUrl: c.restUrl, anonKey: c.anonKey };
  });

  return {
    /** Emails a code and/or magic link. Same answer for every well-formed address. */
    send: (email: string, opts: { state?: string; redirectTo?: string } = {}) =>
      http<SendResponse>('POST', '/api/auth/passwordless/send', { email, ...opts }),
    /** Verifies the 6-digit code; on success the browser holds the session cookies. */
    verify: async (authRequestId: string, code: string) =>
      signedIn(await http<VerifyResponse>('POST', '/api/auth/passwordless/verify', { authRequestId, code })),
    /** Consumes a magic-link token (for apps that route links to their own page). */
    verifyLink: async (linkToken: string) =>
      signedIn(await http<VerifyResponse>('POST', '/api/auth/passwordless/verify', { linkToken })),
    /** A fresh code and link for the same request; the old ones stop working. */
    resend: (authRequestId: string) => http<SendResponse>('POST', '/api/auth/passwordless/resend', { authRequestId }),
    session,
    refresh,
    /** Signs this device out (the session is revoked on the server) and tells the other tabs. */
    async logout(): Promise<void> {
      await http<void>('POST', '/api/auth/logout');
      tabs.post({ type: 'signed_out' });
      setState('SIGNED_OUT', null);
    },
    getProfile: async () => (await authed<{ profile: User }>('GET', '/api/profile')).profile,
    /** Changes the own profile (name, metadata); Postgres RLS decides what may change. */
    async updateProfile(patch: { name?: string | null; metadata?: Record<string, unknown> }): Promise<User> {
      const { profile } = await authed<{ profile: User }>('PATCH', '/api/profile', patch);
      if (current) setState('USER_UPDATED', { ...current, user: profile });
      return profile;
    },
    listSessions: async () => (await authed<{ sessions: DeviceSession[] }>('GET', '/api/auth/sessions')).sessions,
    /** Signs a device out; revoking the current one signs this tab out too. */
    async revokeSession(id: string): Promise<void> {
      await authed<void>('DELETE', `/api/auth/sessions/${encodeURIComponent(id)}`);
      if (current?.session.id === id) {
        tabs.post({ type: 'signed_out' });
        setState('SIGNED_OUT', null);
      }
    },
    /** The latest known state, without asking the server (null until the first `session()`). */
    get state(): AuthState | null {
      return known ? { event: 'INITIAL_SESSION', session: current } : null;
    },
    onAuthStateChange: (listener: (state: AuthState) => void) => authEvents.on(listener),
    /**
     * Live changes of the own profile row and `profile_sync` broadcasts. The realtime client loads on
     * first use (it is not in the main bundle).
     */
    async subscribeToProfile(user: Pick<User, 'id' | 'email'>, handlers: ProfileHandlers): Promise<ProfileSubscription> {
      if (!realtime) {
        const c = await config();
        realtime = createRealtime({ url: wsUrl(c.realtimeUrl, baseUrl), anonKey: c.anonKey, transport: options.webSocket });
      }
      // The server closes a revoked session's channels at once; asking for the session then turns
      // this device signed out without waiting for the next periodic check.
      return realtime.subscribeToProfile(user, {
        ...handlers,
        onStatus(status) {
          handlers.onStatus?.(status);
          if (status === 'closed') void session().catch(() => {});
        },
      });
    },
    config,
    data,
    /** Stops timers and closes the realtime socket and the tab channel. */
    async close(): Promise<void> {
      clearTimeout(refreshTimer);
      clearInterval(checkTimer);
      tabs.close();
      await realtime?.close();
    },
  };
}

export type HallpassClient = ReturnType<typeof createHallpassClient>;

/** Resolves a relative realtime URL against the server (or page) origin, as ws: or wss:. */
export function wsUrl(url: string, baseUrl: string): string {
  const origin = baseUrl || (globalThis.location?.origin ?? 'http://localhost');
  const abs = new URL(url, origin);
  abs.protocol = abs.protocol === 'https:' || abs.protocol === 'wss:' ? 'wss:' : 'ws:';
  return abs.toString().replace(/\/$/, '');
}
