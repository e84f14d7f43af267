import { fileURLToPath } from 'node:url';
import { signApiKey } from '../../../packages/server/src/sessions/api-keys.ts';
import { signInWithCode, startTestServer, uniqueEmail, type TestServer } from '../../../packages/server/test/harness.ts';
import { supabaseClient } from '../../../packages/server/test/supabase.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The store's redeem_offer function (migration 0022), called as the browser calls it: supabase-js's
// rpc() on /rest/v1, as the signed-in user, under the example's RLS policies.
let server: TestServer;
let anonKey: string;

beforeAll(async () => {
  server = await startTestServer({ env: { APP_MIGRATIONS_DIR: fileURLToPath(new URL('../migrations', import.meta.url)) } });
  anonKey = await signApiKey(server.deps, 'anon');
}, 300_000);
afterAll(() => server?.stop());

async function member() {
  const browser = server.browser();
  await signInWithCode(server, browser, uniqueEmail('shopper'));
  return supabaseClient(server.url, anonKey, browser.cookies.get('hallpass-access')!);
}

describe('redeem_offer through supabase-js', () => {
  it('redeems a members-only offer once, returning the same redemption when called again', async () => {
    const me = await member();
    const { data: offer } = await me.from('offers').select('id').eq('audience', 'members').limit(1).single();
    const first = await me.rpc('redeem_offer', { offer_id: offer!.id });
    expect(first.error).toBeNull();
    expect(first.data).toMatchObject({ offer_id: offer!.id });
    const again = await me.rpc('redeem_offer', { offer_id: offer!.id });
    expect(again.data).toEqual(first.data);
    const mine = await me.from('offers').select('title, redemptions(redeemed_at)').eq('id', offer!.id).single();
    expect(mine.data?.redemptions).toHaveLength(1);
  });

  it('refuses visitors with 401, and an offer the user cannot see with 400 offer_unavailable', async () => {
    const visitor = supabaseClient(server.url, anonKey);
    const anon = await visitor.rpc('redeem_offer', { offer_id: 1 });
    expect(anon.status).toBe(401);
    expect(anon.error?.code).toBe('42501');
    const me = await member();
    const missing = await me.rpc('redeem_offer', { offer_id: 999_999 });
    expect(missing.status).toBe(400);
    expect(missing.error).toMatchObject({ code: 'P0001', hint: 'offer_unavailable' });
  });
});
