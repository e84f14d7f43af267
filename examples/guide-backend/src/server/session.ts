// server/session.ts: "Backend generates a JWT or HTTP-only cookie scoped to the email. No Supabase
// Auth tokens are involved." The JWT carries the email claim the guide's RLS policies read; it is
// signed with the project's JWT secret so the database API accepts it as role authenticated.
import { SignJWT } from 'jose';

export const sessionCookieName = 'session';

export async function setSessionCookie(email: string): Promise<string> {
  const jwt = await new SignJWT({ email, role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(email)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(process.env.SUPABASE_JWT_SECRET!));
  const secure = process.env.APP_BASE_URL!.startsWith('https://') ? '; Secure' : '';
  return `${sessionCookieName}=${jwt}; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600${secure}`;
}
