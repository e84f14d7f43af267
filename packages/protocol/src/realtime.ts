/** Realtime wire shapes shared by server and clients (beyond what Supabase Realtime defines). */

/** The private topic of one user (their profile id): only they may join it, with `private: true`. */
export function userTopic(sub: string): string {
  return `user:${sub}`;
}

/** The `profile_sync` broadcast sent on the user's topic after each sign-in. */
export interface ProfileSyncPayload {
  email: string;
  reason: 'login';
  /** ISO 8601 time of the sign-in. */
  at: string;
}
