import { randomUUID } from 'node:crypto';
import type { Tx } from '@hallpass/db';
import type { SessionInfo } from '@hallpass/protocol';
import type { JWTPayload } from 'jose';
import type { Deps } from '../deps.ts';
import { digest, generateToken } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { checkClaims } from './signing-keys.ts';
import { findProfileById, type ProfileRow } from '../profiles/profiles.repository.ts';
import {
  extendSession,
  findLiveSession,
  insertRefreshToken,
  insertSession,
  lockRefreshToken,
  markRefreshTokenRotated,
  revokeSessionRow,
  runIfSessionLive,
  type SessionRow,
} from './sessions.repository.ts';

/** The claims of a Hallpass access token: Supabase's, so `auth.uid()`/`auth.email()` policies work. */
export interface AccessClaims extends JWTPayload {
  sub: string;
  email: string;
  role: 'authenticated';
  aud: 'authenticated';
  session_id: string;
  aal: 'aal1';
  amr: SessionRow['amr'];
  app_metadata: { provider: 'email'; providers: ['email']; tenant_id: string };
  user_metadata: Record<string, never>;
  is_anonymous: false;
  iat: number;
  exp: number;
  /** Unique per token: lets tabs tell "a newer token than mine" without comparing clocks. */
  jti?: string;
}

export interface IssuedSession {
  session: SessionRow;
  accessToken: string;
  /** Absent when a refresh inside the reuse grace window answered with an access token only. */
  refreshToken?: string;
  claims: AccessClaims;
}

type SessionDeps = Pick<Deps, 'config' | 'keys' | 'signing' | 'clock' | 'db'>;
/** What a refresh needs besides: rotations and reuse revocations are counted. */
type RefreshDeps = SessionDeps & Pick<Deps, 'metrics'>;

/** The first tokens of a session that was just written (see `completeSignInWrite`). */
export async function issueNewSession(
  deps: SessionDeps,
  profile: ProfileRow,
  session: SessionRow,
  refreshToken: string,
): Promise<IssuedSession> {
  const { token, claims } = await signAccessToken(deps, profile, session);
  return { session, accessToken: token, refreshToken, claims };
}

/**
 * Opens a session for a profile inside the caller's transaction (seeding, tests, and any flow other
 * than the passwordless verify, which writes its session in `completeSignInWrite`).
 */
export async function startSession(
  deps: SessionDeps,
  tx: Tx,
  input: { profile: ProfileRow; method: 'otp' | 'magic_link'; userAgent: string | null; ip: string | null },
): Promise<IssuedSession> {
  const prepared = prepareSession(deps, input.method);
  const session = await insertSession(tx, {
    profileId: input.profile.id,
    tenantId: input.profile.tenant_id,
    amr: prepared.amr,
    userAgent: input.userAgent?.slice(0, 512) ?? null,
    ip: input.ip,
    expiresAt: prepared.expiresAt,
  });
  await insertRefreshToken(tx, session.id, prepared.refreshHash);
  return issueNewSession(deps, input.profile, session, prepared.refreshToken);
}

/** What a new session needs before it is written: its refresh token and window. */
export function prepareSession(deps: SessionDeps, method: 'otp' | 'magic_link') {
  const now = deps.clock.now();
  const refreshToken = generateToken();
  return {
    refreshToken,
    refreshHash: digest(deps.keys, 'refresh', refreshToken),
    amr: [{ method, timestamp: Math.floor(now.getTime() / 1000) }] as SessionRow['amr'],
    expiresAt: new Date(now.getTime() + deps.config.sessions.refreshTokenTtl * 1000),
  };
}

export async function signAccessToken(
  deps: Pick<Deps, 'config' | 'signing' | 'clock'>,
  profile: Pick<ProfileRow, 'id' | 'email' | 'tenant_id'>,
  session: Pick<SessionRow, 'id' | 'amr'>,
): Promise<{ token: string; claims: AccessClaims }> {
  const iat = Math.floor(deps.clock.now().getTime() / 1000);
  const claims: AccessClaims = {
    iss: deps.config.issuer,
    sub: profile.id,
    aud: 'authenticated',
    iat,
    exp: iat + deps.config.sessions.accessTokenTtl,
    email: profile.email,
    role: 'authenticated',
    session_id: session.id,
    aal: 'aal1',
    amr: session.amr,
    app_metadata: { provider: 'email', providers: ['email'], tenant_id: profile.tenant_id },
    user_metadata: {},
    is_anonymous: false,
    jti: randomUUID(),
  };
  return { token: deps.signing.signJwt(claims), claims };
}

export type TokenCheck = { ok: true; claims: AccessClaims } | { ok: false; expired: boolean };

/**
 * Checks signature (our key, ES256 only: `alg: none` and HS256-with-the-public-key are refused
 * before any crypto; see `jwtVerifier`), audience, issuer and expiry. Does not look at revocation;
 * see `authenticate`.
 */
export async function verifyAccessToken(deps: Pick<Deps, 'config' | 'signing' | 'clock'>, token: string): Promise<TokenCheck> {
  const payload = deps.signing.verifyJwt(token);
  if (!payload) return { ok: false, expired: false };
  const check = checkClaims(payload, {
    now: deps.clock.now(),
    issuer: deps.config.issuer,
    audience: 'authenticated',
    required: ['sub', 'exp', 'iat', 'session_id', 'email'],
  });
  if (check !== 'ok') return { ok: false, expired: check === 'expired' };
  if (payload.role !== 'authenticated') return { ok: false, expired: false };
  return { ok: true, claims: payload as unknown as AccessClaims };
}

export interface Authenticated {
  claims: AccessClaims;
  session: SessionRow;
  /** Set when the access token was renewed from the refresh token; the caller sets the cookies. */
  renewed?: IssuedSession;
}

/**
 * Who is calling: a valid access token whose session is still live, or, when the access token is
 * missing or merely expired, a refresh-token exchange. The live-session lookup is what makes logout
 * take effect at once everywhere instead of at token expiry.
 */
export async function authenticate(
  deps: RefreshDeps,
  tokens: { accessToken: string | undefined; refreshToken: string | undefined },
): Promise<Authenticated> {
  const checked = await checkTokens(deps, tokens);
  if (checked.renewed) return { claims: checked.claims, session: checked.renewed.session, renewed: checked.renewed };
  const session = await findLiveSession(deps.db, checked.claims.session_id, deps.clock.now());
  if (!session || session.profile_id !== checked.claims.sub) throw new AppError('session_expired');
  return { claims: checked.claims, session };
}

/**
 * The token half of `authenticate`: a valid access token, or a refresh-token exchange when it is
 * missing or merely expired. The caller must still check the session is live; `runAsSessionUser` does
 * that in the same statement that sets the claims.
 */
export async function checkTokens(
  deps: RefreshDeps,
  tokens: { accessToken: string | undefined; refreshToken: string | undefined },
): Promise<{ claims: AccessClaims; renewed?: IssuedSession }> {
  if (tokens.accessToken) {
    const check = await verifyAccessToken(deps, tokens.accessToken);
    if (check.ok) return { claims: check.claims };
    // A forged or broken token is refused outright; only an honest, expired one may be renewed.
    if (!check.expired) throw new AppError('unauthenticated');
  }
  if (!tokens.refreshToken) throw new AppError('unauthenticated');
  const renewed = await refreshSession(deps, tokens.refreshToken);
  return { claims: renewed.claims, renewed };
}

/**
 * Exchanges a refresh token for a new access token and a new refresh token (rotation), sliding the
 * session's window. A token that was already exchanged means someone kept a copy: the session is
 * revoked. The exception is a few seconds of grace, for a browser that sent two requests at once
 * with the same cookie; those get an access token and no new refresh token.
 */
export async function refreshSession(deps: RefreshDeps, refreshToken: string): Promise<IssuedSession> {
  const hash = digest(deps.keys, 'refresh', refreshToken);
  const outcome = await deps.db.transaction(async (tx) => {
    const now = deps.clock.now();
    const row = await lockRefreshToken(tx, hash);
    if (!row) return { kind: 'unknown' as const };
    const { session } = row;
    if (session.revoked_at || session.expires_at <= now) return { kind: 'dead' as const };
    const profile = await findProfileById(tx, session.profile_id);
    if (!profile) return { kind: 'dead' as const };
    if (row.rotated_at) {
      const graceEnds = row.rotated_at.getTime() + deps.config.sessions.refreshReuseGraceSeconds * 1000;
      if (now.getTime() > graceEnds) {
        await revokeSessionRow(tx, session.id, 'refresh_token_reuse', now);
        deps.metrics.sessionRevoked('refresh_token_reuse');
        return { kind: 'reuse' as const };
      }
      const { token, claims } = await signAccessToken(deps, profile, session);
      return { kind: 'ok' as const, issued: { session, accessToken: token, claims } satisfies IssuedSession };
    }
    await markRefreshTokenRotated(tx, hash, now);
    const next = generateToken();
    await insertRefreshToken(tx, session.id, digest(deps.keys, 'refresh', next));
    const expiresAt = new Date(now.getTime() + deps.config.sessions.refreshTokenTtl * 1000);
    await extendSession(tx, session.id, now, expiresAt);
    const live = { ...session, last_seen_at: now, expires_at: expiresAt };
    const { token, claims } = await signAccessToken(deps, profile, live);
    return { kind: 'ok' as const, issued: { session: live, accessToken: token, refreshToken: next, claims } };
  });
  if (outcome.kind !== 'ok') throw new AppError('session_expired');
  if (outcome.issued.refreshToken) deps.metrics.sessionRefreshed();
  return outcome.issued;
}

/**
 * Runs one statement as the token's user (role `authenticated`, its claims as request.jwt.claims) in
 * one round trip, only while the session is live: grants and RLS decide what it touches. See
 * `runIfSessionLive` for the statement's shape.
 */
export async function runAsSessionUser(
  deps: Pick<Deps, 'db' | 'clock'>,
  claims: AccessClaims,
  sql: string,
  params: ReadonlyArray<string | null>,
): Promise<{ n: number; body: string | null }> {
  const who = { sessionId: claims.session_id, profileId: claims.sub, claimsJson: JSON.stringify(claims), now: deps.clock.now() };
  const result = await runIfSessionLive(deps.db, who, sql, params);
  if (!result) throw new AppError('session_expired');
  return result;
}

export async function revokeSession(deps: Pick<Deps, 'db' | 'clock' | 'metrics'>, sessionId: string, reason: 'logout' | 'revoked_by_user'): Promise<boolean> {
  const revoked = await revokeSessionRow(deps.db, sessionId, reason, deps.clock.now());
  if (revoked) deps.metrics.sessionRevoked(reason);
  return revoked;
}

export function toSessionInfo(s: SessionRow): SessionInfo {
  return {
    id: s.id,
    createdAt: s.created_at.toISOString(),
    lastSeenAt: s.last_seen_at.toISOString(),
    expiresAt: s.expires_at.toISOString(),
    aal: 'aal1',
    amr: s.amr,
  };
}

