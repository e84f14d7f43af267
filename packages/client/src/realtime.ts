import type { User } from '@hallpass/protocol';
import type { RealtimeChannel, RealtimeClient } from '@supabase/realtime-js';

/** Where the live connection stands; `unavailable` means the server has no realtime endpoint. */
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'unavailable' | 'closed';

export interface ProfileChange {
  eventType: 'INSERT' | 'UPDATE' | 'DELETE';
  profile: User | null;
  commitTimestamp: string | undefined;
}

export interface ProfileHandlers {
  /** The own profile row changed (on any device). */
  onChange?: (change: ProfileChange) => void;
  /** `profile_sync`: a sign-in of this user somewhere (the payload is the server's). */
  onProfileSync?: (payload: Record<string, unknown>) => void;
  /** Connection state; on each return to `live` after a gap, re-read what may have been missed. */
  onStatus?: (status: LiveStatus) => void;
}

export interface ProfileSubscription {
  unsubscribe(): Promise<void>;
}

export interface RealtimeOptions {
  /** `ws(s)://host/realtime/v1`; the client appends `/websocket`. */
  url: string;
  anonKey: string;
  /** Injectable socket constructor (tests, non-browser runtimes). */
  transport?: unknown;
}

/** A database row of `public.profiles`, as change events carry it. */
interface ProfileRecord {
  id: string;
  email: string;
  name: string | null;
  metadata: Record<string, unknown> | null;
  tenant_id: string;
  last_login: string | null;
  created_at: string;
  updated_at: string;
}

export function recordToUser(r: ProfileRecord): User {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    metadata: r.metadata ?? {},
    tenantId: r.tenant_id,
    lastLogin: r.last_login,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

// Socket closes before it ever opened, after which the server is taken to have no realtime endpoint.
const giveUpAfter = 3;

/**
 * One realtime socket per SDK client, loaded on first use so the sign-in bundle does not carry it.
 * Identity: the join carries only the anon key, so the server takes the user from the session
 * cookie the browser sent with the WebSocket upgrade; RLS decides which events reach us.
 */
export function createRealtime(opts: RealtimeOptions) {
  let client: Promise<RealtimeClient> | null = null;
  let unavailable = false;
  const onUnavailable = new Set<() => void>();

  const load = () =>
    (client ??= import('@supabase/realtime-js').then(({ RealtimeClient }) => {
      const rt = new RealtimeClient(opts.url, {
        params: { apikey: opts.anonKey },
        ...(opts.transport ? { transport: opts.transport as never } : {}),
        heartbeatIntervalMs: 15_000,
      });
      // Channels report one error per outage, so unavailability is judged at the socket: closes
      // without a single open mean there is nothing there. Stop retrying rather than hammer it.
      let opened = false;
      let closes = 0;
      rt.stateChangeCallbacks.open.push(['hallpass', () => void (opened = true)]);
      rt.stateChangeCallbacks.close.push([
        'hallpass',
        () => {
          if (opened || unavailable || ++closes < giveUpAfter) return;
          unavailable = true;
          void rt.removeAllChannels().then(() => rt.disconnect());
          onUnavailable.forEach((f) => f());
        },
      ]);
      return rt;
    }));

  async function subscribeToProfile(user: Pick<User, 'id' | 'email'>, handlers: ProfileHandlers): Promise<ProfileSubscription> {
    const status = (s: LiveStatus) => handlers.onStatus?.(s);
    if (unavailable) {
      status('unavailable');
      return { unsubscribe: async () => {} };
    }
    const rt = await load();
    let everLive = false;
    let stopped = false;
    const giveUp = () => {
      if (!stopped) status('unavailable');
      stopped = true;
    };
    onUnavailable.add(giveUp);
    status('connecting');
    const onState = (state: string) => {
      if (stopped) return;
      if (state === 'SUBSCRIBED') {
        everLive = true;
        status('live');
      } else if (state === 'CLOSED') status('closed');
      else status(everLive ? 'reconnecting' : 'connecting');
    };
    const rows: RealtimeChannel = rt
      .channel(`profile:${user.id}`)
      .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles', filter: `email=eq.${user.email}` }, (p) => {
        const rec = (p.eventType === 'DELETE' ? null : p.new) as ProfileRecord | null;
        handlers.onChange?.({
          eventType: p.eventType,
          profile: rec && rec.id ? recordToUser(rec) : null,
          commitTimestamp: p.commit_timestamp,
        });
      })
      .subscribe(onState);
    const own: RealtimeChannel = rt
      .channel(`user:${user.id}`, { config: { private: true } })
      .on('broadcast', { event: 'profile_sync' }, (msg) => handlers.onProfileSync?.((msg.payload ?? {}) as Record<string, unknown>))
      .subscribe();
    return {
      async unsubscribe() {
        stopped = true;
        onUnavailable.delete(giveUp);
        if (unavailable) return;
        await Promise.all([rt.removeChannel(rows), rt.removeChannel(own)]);
      },
    };
  }

  return {
    subscribeToProfile,
    async close() {
      if (client) await (await client).disconnect();
      client = null;
    },
  };
}
