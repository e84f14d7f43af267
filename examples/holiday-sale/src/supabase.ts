import type { SupabaseClient } from '@supabase/supabase-js';

let client: Promise<SupabaseClient> | null = null;

/**
 * supabase-js, unmodified, on this server's data API (/rest/v1). The anon key comes from /api/config;
 * the user comes from the session cookie, which the browser sends to its own origin, so the token
 * never reaches script. Loaded on first use, so it is not part of the first page load.
 */
export function supabase(): Promise<SupabaseClient> {
  client ??= (async () => {
    const [{ createClient }, config] = await Promise.all([
      import('@supabase/supabase-js'),
      fetch('/api/config').then((r) => r.json() as Promise<{ anonKey: string }>),
    ]);
    return createClient(window.location.origin, config.anonKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    });
  })();
  return client;
}
