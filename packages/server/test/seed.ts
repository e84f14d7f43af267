import { resetRole, setClaims, type Db } from '@hallpass/db';
import type { Deps } from '../src/deps.ts';
import { insertSession } from '../src/sessions/sessions.repository.ts';
import { signAccessToken, type AccessClaims } from '../src/sessions/sessions.service.ts';

export interface SeededUser {
  id: string;
  email: string;
  tenantId: string;
  token: string;
  claims: AccessClaims;
}

/**
 * Makes signed-in users the way sign-in does (profile as service_role, a live session row, a signed
 * access token) in one transaction, without sending mail: for suites and benches that need many.
 */
export async function seedUsers(
  deps: Pick<Deps, 'config' | 'signing' | 'clock'>,
  db: Db,
  specs: ReadonlyArray<{ email: string; tenantId: string }>,
): Promise<SeededUser[]> {
  const now = deps.clock.now();
  const rows = await db.transaction(async (tx) => {
    await setClaims(tx, { role: 'service_role' });
    const { rows: profiles } = await tx.query<{ id: string; email: string; tenant_id: string }>(
      `insert into public.profiles (tenant_id, email)
       select t, e from unnest($1::uuid[], $2::text[]) with ordinality as x(t, e, i) order by i
       returning id, email, tenant_id`,
      [specs.map((s) => s.tenantId), specs.map((s) => s.email)],
    );
    await resetRole(tx);
    const out = [];
    for (const p of profiles) {
      const session = await insertSession(tx, {
        profileId: p.id,
        tenantId: p.tenant_id,
        amr: [{ method: 'otp', timestamp: Math.floor(now.getTime() / 1000) }],
        userAgent: 'seed',
        ip: null,
        expiresAt: new Date(now.getTime() + 3600_000),
      });
      out.push({ profile: p, session });
    }
    return out;
  });
  return Promise.all(
    rows.map(async ({ profile, session }) => {
      const { token, claims } = await signAccessToken(deps, profile, session);
      return { id: profile.id, email: profile.email, tenantId: profile.tenant_id, token, claims };
    }),
  );
}
