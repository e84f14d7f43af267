/**
 * Coordination between tabs of one browser. They share the session cookies, so a refresh done by one
 * tab serves all; two tabs rotating the same refresh token at once would look like token theft to the
 * server. The Web Locks API serialises refreshes across tabs; a shared note in localStorage (written
 * before the lock is released, so the next holder reads it) lets a waiting tab adopt the result
 * instead of refreshing again; a BroadcastChannel tells the other tabs about sign-in and sign-out.
 */

/** A renewed access token, as tabs tell each other of it: its expiry and its id (`jti`). */
export interface RefreshedToken {
  expiresAt: string;
  tokenId: string | null;
}

export type TabMessage = ({ type: 'refreshed' } & RefreshedToken) | { type: 'signed_in' } | { type: 'signed_out' };

export interface TabEnvironment {
  locks?: Pick<LockManager, 'request'> | undefined;
  storage?: Pick<Storage, 'getItem' | 'setItem'> | undefined;
  createChannel?: ((name: string) => BroadcastChannel) | undefined;
}

interface RefreshNote extends RefreshedToken {
  /** When the refresh finished (ms since epoch, this browser's clock). */
  at: number;
}

const noteKey = 'hallpass:refresh';
const lockName = 'hallpass:refresh';

export interface Tabs {
  /**
   * Runs `refresh` unless another tab finished one after this call began; returns the new token.
   * `renewedElsewhere()`, when given, asks the server (whose cookie store every tab shares) whether
   * the token is no longer the one this tab knew, and returns it then: localStorage reaches other
   * tabs late under load, so the note alone can miss a refresh that just happened.
   */
  refreshOnce(refresh: () => Promise<RefreshedToken>, renewedElsewhere?: () => Promise<RefreshedToken | null>): Promise<RefreshedToken>;
  post(message: TabMessage): void;
  onMessage(listener: (message: TabMessage) => void): () => void;
  close(): void;
}

export function browserTabEnvironment(): TabEnvironment {
  const g = globalThis as typeof globalThis & { navigator?: Navigator; localStorage?: Storage };
  let storage: Storage | undefined;
  try {
    storage = g.localStorage;
  } catch {
    storage = undefined; // storage disabled by the browser's settings
  }
  return {
    locks: g.navigator?.locks,
    storage,
    createChannel: typeof BroadcastChannel === 'function' ? (name) => new BroadcastChannel(name) : undefined,
  };
}

export function createTabs(env: TabEnvironment): Tabs {
  const channel = env.createChannel?.('hallpass');
  const listeners = new Set<(m: TabMessage) => void>();
  if (channel) channel.onmessage = (e: MessageEvent<TabMessage>) => listeners.forEach((l) => l(e.data));
  // Within one tab, concurrent callers share one refresh.
  let inFlight: Promise<RefreshedToken> | null = null;

  const readNote = (): RefreshNote | null => {
    try {
      const raw = env.storage?.getItem(noteKey);
      return raw ? (JSON.parse(raw) as RefreshNote) : null;
    } catch {
      return null;
    }
  };
  const writeNote = (note: RefreshNote) => {
    try {
      env.storage?.setItem(noteKey, JSON.stringify(note));
    } catch {
      // Quota or privacy mode: tabs then fall back on the server's short reuse grace window.
    }
  };

  const post = (message: TabMessage) => channel?.postMessage(message);

  return {
    refreshOnce(refresh, renewedElsewhere) {
      if (inFlight) return inFlight;
      const asked = Date.now();
      const run = async (): Promise<RefreshedToken> => {
        const note = readNote();
        if (note && note.at > asked && Date.parse(note.expiresAt) > Date.now()) return { expiresAt: note.expiresAt, tokenId: note.tokenId ?? null };
        const adopted = await renewedElsewhere?.();
        if (adopted) return adopted;
        const token = await refresh();
        writeNote({ ...token, at: Date.now() });
        post({ type: 'refreshed', ...token });
        return token;
      };
      inFlight = (env.locks ? (env.locks.request(lockName, run) as unknown as Promise<RefreshedToken>) : run()).finally(() => {
        inFlight = null;
      });
      return inFlight;
    },
    post,
    onMessage(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    close() {
      channel?.close();
      listeners.clear();
    },
  };
}
