import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import type { AuthState, HallpassClient } from '@hallpass/client';

interface HallpassContextValue {
  client: HallpassClient;
  /** null until the first session check answered. */
  auth: AuthState | null;
}

const HallpassContext = createContext<HallpassContextValue | null>(null);

/**
 * Makes a Hallpass client available to the hooks and components below, and keeps the auth state:
 * it asks the server once on mount, follows the client's auth events (other tabs included), and
 * re-checks when the tab comes back (visible, online, focused) so a device signed out while asleep
 * learns it at once.
 * @example <HallpassProvider client={createHallpassClient()}><App /></HallpassProvider>
 */
export function HallpassProvider({ client, children }: { client: HallpassClient; children?: ReactNode }) {
  const [auth, setAuth] = useState<AuthState | null>(client.state);
  useEffect(() => {
    const off = client.onAuthStateChange(setAuth);
    const recheck = () => {
      if (document.visibilityState === 'visible') void client.session().catch(() => {});
    };
    void client.session().catch(() => {});
    document.addEventListener('visibilitychange', recheck);
    window.addEventListener('online', recheck);
    window.addEventListener('focus', recheck);
    return () => {
      off();
      document.removeEventListener('visibilitychange', recheck);
      window.removeEventListener('online', recheck);
      window.removeEventListener('focus', recheck);
    };
  }, [client]);
  return <HallpassContext.Provider value={{ client, auth }}>{children}</HallpassContext.Provider>;
}

export function useHallpassContext(): HallpassContextValue {
  const value = useContext(HallpassContext);
  if (!value) throw new TypeError('Hallpass hooks need a <HallpassProvider> above them');
  return value;
}

/** The client from the nearest provider. */
export function useHallpass(): HallpassClient {
  return useHallpassContext().client;
}
