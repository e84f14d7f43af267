// server/routes/passwordless.ts: as the guide writes it.
import { Scalekit } from "@scalekit-sdk/node";
import { setSessionCookie } from '../session';
import { supabaseAdmin } from '../supabaseAdminClient';
const scalekit = new Scalekit(
process.env.SCALEKIT_URL!,
process.env.SCALEKIT_CLIENT_ID!,
process.env.SCALEKIT_CLIENT_SECRET!
);
export async function sendLoginEmail(email: string) {
return scalekit.passwordless.sendPasswordlessEmail(email, {
template: "SIGNIN",
expiresIn: 300,
magiclinkAuthUri: `${process.env.APP_BASE_URL}/passwordless/verify`
});
}

// The guide's remaining steps, in its words: "Backend validates with Scalekit, returning a verified
// email", "Backend checks public.profiles in Supabase. If no record exists, it inserts a new one with
// the email", "After sync, the backend emits a profile_sync event", "creates a session cookie".
export async function verifyLogin(credential: { code: string } | { linkToken: string }, authRequestId?: string) {
  const { email } = await scalekit.passwordless.verifyPasswordlessEmail(credential, authRequestId);
  const { data: existing } = await supabaseAdmin.from('profiles').select('id').eq('email', email).maybeSingle();
  if (!existing) await supabaseAdmin.from('profiles').insert({ email });
  // After Scalekit verification
  await supabaseAdmin
  .from('profiles')
  .update({ last_verified: new Date() })
  .eq('email', email);
  await supabaseAdmin
  .channel('broadcast')
  .send({ type: 'broadcast', event: 'profile_sync', payload: { email } });
  return { email, cookie: await setSessionCookie(email) };
}
