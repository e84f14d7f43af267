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

/**
 * One realtime socket per SDK client, loaded on first use so the sign-in bundle does not carry it.
 * Identity: the join carries only the anon key, so the server takes the user from the session
 * cookie the browser sent with the WebSocket upgrade; RLS decides which events reach us.
 */
const giveUpAfter = 3;

export function createRealtime(opts: RealtimeOptions) {
  let client: Promise<RealtimeClient> | null = null;
  const load = () =>
    (client ??= import('@supabase/realtime-js').then(
      ({ RealtimeClient }) =>
        new RealtimeClient(opts.url, {
          params: { apikey: opts.anonKey },
          ...(opts.transport ? { transport: opts.transport as never } : {}),
          heartbeatIntervalMs: 15_000,
        }),
    ));

  async function subscribeToProfile(user: Pick<User, 'id' | 'email'>, handlers: ProfileHandlers): Promise<ProfileSubscription> {
    const rt = await load();
    let everLive = false;
    let failures = 0;
    let stopped = false;
    const status = (s: LiveStatus) => handlers.onStatus?.(s);
    status('connecting');
    const onState = (state: string) => {
      if (stopped) return;
      if (state === 'SUBSCRIBED') {
        everLive = true;
        failures = 0;
        status('live');
      } else if (state === 'CLOSED') status('closed');
      else if (!everLive && ++failures >= giveUpAfter) {
        // Never connected: this server has no realtime endpoint. Stop retrying rather than hammer it.
        stopped = true;
        void rt.removeAllChannels().then(() => rt.disconnect());
        status('unavailable');
      } else status(everLive ? 'reconnecting' : 'connecting');
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
        await Promise.all([rt.removeChannel(rows), rt.removeChannel(own)]);
      },
    };
  }

  return {
    subscribeToProfile,
    async close() {
      if (client) (await client).disconnect();
      client = null;
    },
  };
}
