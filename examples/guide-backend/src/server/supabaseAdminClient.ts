// server/supabaseAdminClient.ts: the service-role client the guide's backend syncs profiles with.
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';

// Node 20 has no global WebSocket; supabase-js documents passing `ws` (not needed on Node 22+).
export const supabaseAdmin = createClient(process.env.SUPABASE_URL!, process.env.SUPABASE_SERVICE_ROLE_KEY!, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: ws as never },
});

/** A client acting as the signed-in user: their session JWT decides, through RLS, what they read. */
export function supabaseAsUser(jwt: string) {
  return createClient(process.env.SUPABASE_URL!, process.env.SUPABASE_ANON_KEY!, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { headers: { Authorization: `Bearer ${jwt}` } },
    realtime: { transport: ws as never },
  });
}
