import { useCallback, useEffect, useRef, useState } from 'react';
import type { LiveStatus, User } from '@hallpass/client';
import { useHallpassContext } from './context.tsx';

export interface UseProfileOptions {
  /** Called on each `profile_sync` (a sign-in of this user on some device). */
  onProfileSync?: (payload: Record<string, unknown>) => void;
}

export interface UseProfile {
  profile: User | null;
  /** `live` while realtime delivers changes; `unavailable` when the server has no realtime. */
  live: LiveStatus | 'off';
  /** When the profile last changed as seen here (from an event, a save or a re-sync). */
  changedAt: Date | null;
  save(patch: { name?: string | null; metadata?: Record<string, unknown> }): Promise<User>;
  /** Re-reads the profile from the server. */
  reload(): Promise<void>;
  error: Error | null;
}

/**
 * The signed-in user's profile, live: changes made on other devices arrive over realtime without a
 * reload, and the profile is re-read whenever the tab wakes up, comes back online or the realtime
 * connection returns after a gap, so nothing missed while asleep or offline stays stale.
 */
export function useProfile(options: UseProfileOptions = {}): UseProfile {
  const { client, auth } = useHallpassContext();
  const user = auth?.session?.user ?? null;
  const [profile, setProfile] = useState<User | null>(user);
  const [live, setLive] = useState<LiveStatus | 'off'>('off');
  const [changedAt, setChangedAt] = useState<Date | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const onSync = useRef(options.onProfileSync);
  onSync.current = options.onProfileSync;

  const accept = useCallback((next: User) => {
    // Out-of-order answers (a slow re-read after a newer event) must not roll the profile back.
    setProfile((prev) => (prev && prev.id === next.id && prev.updatedAt > next.updatedAt ? prev : next));
    setChangedAt(new Date());
  }, []);

  const reload = useCallback(async () => {
    try {
      accept(await client.getProfile());
      setError(null);
    } catch (err) {
      setError(err as Error);
    }
  }, [client, accept]);

  const id = user?.id;
  const email = user?.email;
  useEffect(() => {
    if (!id || !email) {
      setProfile(null);
      setLive('off');
      return;
    }
    let gone = false;
    let wasLive = false;
    let sub: { unsubscribe(): Promise<void> } | undefined;
    void reload();
    void client
      .subscribeToProfile(
        { id, email },
        {
          onChange: (c) => c.profile && accept(c.profile),
          onProfileSync: (p) => onSync.current?.(p),
          onStatus: (s) => {
            if (gone) return;
            setLive(s);
            // Back after a gap: events during it may be lost, so read the row again.
            if (s === 'live' && wasLive) void reload();
            if (s === 'live') wasLive = true;
          },
        },
      )
      .then((s) => (gone ? void s.unsubscribe() : (sub = s)))
      .catch(() => setLive('unavailable'));
    const wake = () => {
      if (document.visibilityState === 'visible' && navigator.onLine) void reload();
    };
    document.addEventListener('visibilitychange', wake);
    window.addEventListener('online', wake);
    return () => {
      gone = true;
      void sub?.unsubscribe();
      document.removeEventListener('visibilitychange', wake);
      window.removeEventListener('online', wake);
    };
  }, [client, id, email, reload, accept]);

  const save = useCallback(
    async (patch: { name?: string | null; metadata?: Record<string, unknown> }) => {
      const next = await client.updateProfile(patch);
      accept(next);
      return next;
    },
    [client, accept],
  );

  return { profile, live, changedAt, save, reload, error };
}
