import type { SessionResponse, User } from '@hallpass/client';
import { useHallpassContext } from './context.tsx';

export type SessionStatus = 'loading' | 'signed_in' | 'signed_out';

export interface UseSession {
  status: SessionStatus;
  user: User | null;
  session: SessionResponse | null;
}

/** The signed-in user, kept current by the provider (sign-in, sign-out, other tabs, other devices). */
export function useSession(): UseSession {
  const { auth } = useHallpassContext();
  if (!auth) return { status: 'loading', user: null, session: null };
  const session = auth.session;
  return { status: session ? 'signed_in' : 'signed_out', user: session?.user ?? null, session };
}
