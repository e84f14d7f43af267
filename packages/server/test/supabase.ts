import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

/**
 * The unmodified supabase-js client pointed at a test server. `token` is a user's access JWT (the
 * verify response's cookie), handed over the way supabase-js documents for third-party auth. Node 20
 * has no global WebSocket, so the realtime part gets `ws`; REST tests never open it.
 */
export function supabaseClient(url: string, apiKey: string, token?: string): SupabaseClient {
  return createClient(url, apiKey, {
    ...(token ? { accessToken: async () => token } : { auth: { persistSession: false, autoRefreshToken: false } }),
    realtime: { transport: WebSocket as never },
  });
}
