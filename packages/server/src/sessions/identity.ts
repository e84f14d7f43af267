import type { Claims } from '@hallpass/db';
import type { Context } from 'hono';
import type { Deps } from '../deps.ts';
import { readSessionCookies } from '../http/cookies.ts';
import { verifyApiKey, type ApiKeyRole } from './api-keys.ts';
import { verifyAppToken, type AppTokenClaims } from './app-tokens.ts';
import { findLiveSession } from './sessions.repository.ts';
import { AppError } from '../shared/errors.ts';
import { checkTokens, verifyAccessToken, type AccessClaims, type IssuedSession } from './sessions.service.ts';

/**
 * Who a request, a data API statement or a realtime channel acts as: the one identity type of the
 * server. Every credential (session cookie, bearer token, realtime `access_token`, API key) becomes
 * one of these through this module and nowhere else. A new credential kind (e.g. OAuth client
 * credentials) is one more member of the union and one more branch in `classify`.
 */
export type Identity = UserIdentity | ApiKeyIdentity | AppTokenIdentity;

interface IdentityBase {
  /** The Postgres role statements run as. */
  role: Claims['role'];
  claims: Claims;
  /** `claims` serialised once: what `request.jwt.claims` is set to, and the key RLS checks are batched by. */
  claimsJson: string;
}

/** A signed-in user: one of our access tokens (from a cookie or a bearer), for a session row. */
export interface UserIdentity extends IdentityBase {
  kind: 'user';
  role: 'authenticated';
  claims: AccessClaims & Claims;
  /** Where the token came from. A cookie identity lives as long as its session; a token's ends with it. */
  via: 'bearer' | 'cookie';
  sub: string;
  sessionId: string;
  /**
   * When this identity ends (ms since the epoch): a bearer token's expiry. Null for a cookie identity,
   * which lives as long as its session (the cookie is renewed; revocation and session checks end it).
   */
  expiresAt: number | null;
  /**
   * The session whose liveness the caller must still check, in the same statement that sets the
   * claims (`hallpass.rest_run`), or null when it was checked already (a renewal from the refresh cookie).
   */
  liveSession: { id: string; profileId: string } | null;
  /** Set when the access token was renewed from the refresh cookie: the caller sets the new cookies. */
  renewed?: IssuedSession;
}

/** One of our API keys: `anon` (public) or `service_role` (bypasses RLS; servers only). */
export interface ApiKeyIdentity extends IdentityBase {
  kind: 'apikey';
  role: ApiKeyRole;
  sub: null;
  sessionId: null;
  expiresAt: null;
}

/**
 * A user token the app's own backend signed with APP_JWT_SECRET (the Scalekit guide's "own JWT"): its
 * claims, no Hallpass session; it lasts until its `exp`. Taken by the data API only.
 */
export interface AppTokenIdentity extends IdentityBase {
  kind: 'app';
  role: 'authenticated';
  sub: string | null;
  sessionId: null;
  expiresAt: number;
}

/** What one credential string is. `invalid` covers forged, foreign and malformed tokens alike. */
export type Credential = { ok: true; identity: Identity } | { ok: false; expired: boolean };

/** The one place a bearer token is read from an `Authorization` header. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

export function apiKeyIdentity(role: ApiKeyRole, issuer: string): ApiKeyIdentity {
  const claims = { role, iss: issuer };
  return { kind: 'apikey', role, claims, claimsJson: JSON.stringify(claims), sub: null, sessionId: null, expiresAt: null };
}

/** `claimsJson`: the claims already serialised (the resolver keeps it with a verified token). */
export function userIdentity(claims: AccessClaims, via: UserIdentity['via'], liveChecked = false, claimsJson = JSON.stringify(claims)): UserIdentity {
  return {
    kind: 'user',
    role: 'authenticated',
    claims,
    claimsJson,
    via,
    sub: claims.sub,
    sessionId: claims.session_id,
    expiresAt: via === 'cookie' ? null : claims.exp * 1000,
    liveSession: liveChecked ? null : { id: claims.session_id, profileId: claims.sub },
  };
}

function appTokenIdentity(claims: AppTokenClaims): AppTokenIdentity {
  const c = claims as AppTokenClaims & Claims;
  return { kind: 'app', role: 'authenticated', claims: c, claimsJson: JSON.stringify(c), sub: claims.sub ?? null, sessionId: null, expiresAt: claims.exp * 1000 };
}

/** A token check with the claims' JSON, for the resolver's cache. */
type VerifiedToken = { ok: true; claims: AccessClaims; json: string } | { ok: false; expired: boolean };

type ResolverDeps = Pick<Deps, 'config' | 'keys' | 'signing' | 'clock' | 'db' | 'metrics'>;

export interface IdentityResolver {
  /**
   * Classifies one credential string: one of our user access tokens (signature, issuer, audience,
   * expiry, role), one of our API keys, or neither. Does not look at the session row: see `liveUser`.
   */
  classify(token: string, via?: UserIdentity['via']): Promise<Credential>;
  /** The role of one of our API keys, or null. */
  apiKeyRole(token: string): Promise<ApiKeyRole | null>;
  /** A user identity whose session row is live now (realtime joins, routes that do not fold the check). */
  liveUser(identity: UserIdentity): Promise<boolean>;
  /** The session cookies of a request: a valid access cookie, or a renewal from the refresh cookie. */
  cookieUser(c: Context): Promise<UserIdentity | null>;
  /**
   * An HTTP request's identity, decided as supabase-js and Supabase's gateway do: `Authorization:
   * Bearer` wins; a bearer that is the anon key (what supabase-js sends before anyone signs in) yields
   * to a session cookie, so a signed-in browser using the anon-key client reads as its user; the
   * service key is service_role; any other bearer must be a valid user access token. With no bearer:
   * the session cookie, else the `apikey` header's role. An `apikey` that is not one of ours is refused.
   */
  request(c: Context): Promise<RequestIdentity>;
}

/** Why a request has no identity; each surface words it in its own dialect (PostgREST, JSON API). */
export type RequestRefusal = 'invalid_api_key' | 'invalid_token' | 'invalid_session' | 'no_credentials';
export type RequestIdentity = { ok: true; identity: Identity } | { ok: false; refusal: RequestRefusal };

/**
 * Builds the resolver with its cache of signature checks: the same token string always verifies the
 * same way under one key, so an ES256 verification is done once per token, not per request. Expiry is
 * still checked on every hit, and revocation per use against the session row. Bounded: cleared when full.
 * @example const identities = createIdentityResolver(deps); const who = await identities.classify(token)
 */
export function createIdentityResolver(deps: ResolverDeps, max = 10_000): IdentityResolver {
  // A verified token's claims and their JSON (what request.jwt.claims is set to), serialised once.
  const users = new Map<string, { claims: AccessClaims; json: string }>();
  // User tokens are checked here too (is this bearer a key?), so "not a key" is remembered as well.
  const keys = new Map<string, ApiKeyRole | null>();
  const put = <V>(m: Map<string, V>, k: string, v: V) => {
    if (m.size >= max) m.clear();
    m.set(k, v);
  };
  const accessToken = async (token: string): Promise<VerifiedToken> => {
    const hit = users.get(token);
    if (hit) {
      if (hit.claims.exp * 1000 > deps.clock.now().getTime()) return { ok: true, claims: hit.claims, json: hit.json };
      users.delete(token);
      return { ok: false, expired: true };
    }
    const check = await verifyAccessToken(deps, token);
    if (!check.ok) return check;
    const verified = { claims: check.claims, json: JSON.stringify(check.claims) };
    put(users, token, verified);
    return { ok: true, ...verified };
  };
  const apiKeyRole = async (token: string) => {
    const hit = keys.get(token);
    if (hit !== undefined) return hit;
    const role = await verifyApiKey(deps, token);
    put(keys, token, role);
    return role;
  };
  const cookieUser = async (c: Context): Promise<UserIdentity | null> => {
    const cookies = readSessionCookies(c, deps.config);
    if (!cookies.accessToken && !cookies.refreshToken) return null;
    if (cookies.accessToken) {
      const check = await accessToken(cookies.accessToken);
      if (check.ok) return userIdentity(check.claims, 'cookie', false, check.json);
    }
    // An expired or missing access cookie: the refresh cookie renews it (session checked there).
    const checked = await checkTokens(deps, cookies);
    const identity = userIdentity(checked.claims, 'cookie', checked.renewed !== undefined);
    return checked.renewed ? { ...identity, renewed: checked.renewed } : identity;
  };
  const fromCookies = async (c: Context): Promise<RequestIdentity | null> => {
    try {
      const user = await cookieUser(c);
      return user ? { ok: true, identity: user } : null;
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return { ok: false, refusal: 'invalid_session' };
    }
  };
  const key = (role: ApiKeyRole): RequestIdentity => ({ ok: true, identity: apiKeyIdentity(role, deps.config.issuer) });
  return {
    apiKeyRole,
    cookieUser,
    async request(c) {
      const apikey = c.req.header('apikey');
      const keyRole = apikey ? await apiKeyRole(apikey) : null;
      if (apikey && !keyRole) return { ok: false, refusal: 'invalid_api_key' };
      const bearer = bearerToken(c.req.header('authorization'));
      if (bearer) {
        const bearerRole = bearer === apikey ? keyRole : await apiKeyRole(bearer);
        if (bearerRole === 'service_role') return key('service_role');
        if (bearerRole === 'anon') return (await fromCookies(c)) ?? key('anon');
        const check = await accessToken(bearer);
        if (check.ok) return { ok: true, identity: userIdentity(check.claims, 'bearer', false, check.json) };
        const app = await verifyAppToken(deps, bearer);
        return app ? { ok: true, identity: appTokenIdentity(app) } : { ok: false, refusal: 'invalid_token' };
      }
      return (await fromCookies(c)) ?? (keyRole ? key(keyRole) : { ok: false, refusal: 'no_credentials' });
    },
    async classify(token, via = 'bearer') {
      const check = await accessToken(token);
      if (check.ok) return { ok: true, identity: userIdentity(check.claims, via, false, check.json) };
      if (check.expired) return { ok: false, expired: true };
      const role = await apiKeyRole(token);
      return role ? { ok: true, identity: apiKeyIdentity(role, deps.config.issuer) } : { ok: false, expired: false };
    },
    async liveUser(identity) {
      const session = await findLiveSession(deps.db, identity.sessionId, deps.clock.now());
      return session !== undefined && session.profile_id === identity.sub;
    },
  };
}
