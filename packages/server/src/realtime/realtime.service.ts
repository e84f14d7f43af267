import type { Queryable } from '@hallpass/db';
import { userTopic, type ProfileSyncPayload } from '@hallpass/protocol';
import { insertBroadcast } from './realtime.repository.ts';

/**
 * Tells every device of a user that they just signed in (so they refresh their profile). Written in
 * the caller's transaction: it is delivered only if the sign-in commits, and it is durable (a device
 * that was offline replays it).
 */
export async function broadcastProfileSync(q: Queryable, input: { sub: string; email: string; at: Date }): Promise<number> {
  const payload: ProfileSyncPayload = { email: input.email, reason: 'login', at: input.at.toISOString() };
  return insertBroadcast(q, { topic: userTopic(input.sub), event: 'profile_sync', payload, private: true });
}
