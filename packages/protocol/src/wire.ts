/** Wire types of the Hallpass HTTP API, shared by server and clients. */

export const passwordlessTypes = ['OTP', 'LINK', 'LINK_OTP'] as const;
export type PasswordlessType = (typeof passwordlessTypes)[number];

export interface SendResponse {
  authRequestId: string;
  /** ISO 8601 time after which the code and link stop working. */
  expiresAt: string;
  /** Seconds from now until `expiresAt`. */
  expiresIn: number;
  passwordlessType: PasswordlessType;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
  metadata: Record<string, unknown>;
  tenantId: string;
  lastLogin: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface VerifyResponse {
  user: User;
  /** Whatever `state` the send request carried, returned unchanged. */
  state: string | null;
}

export interface SessionInfo {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  aal: 'aal1';
  amr: Array<{ method: 'otp' | 'magic_link'; timestamp: number }>;
}

export interface SessionResponse {
  user: User;
  session: SessionInfo;
  /** When the current access token expires (ISO 8601); clients refresh a little before. */
  accessTokenExpiresAt: string;
  /** When the current access token was issued (ISO 8601, whole seconds). */
  accessTokenIssuedAt: string;
  /** The current access token's id (its `jti`); a different id means the token was renewed. */
  accessTokenId: string | null;
}

/** A signed-in device, as `GET /api/auth/sessions` lists it. */
export interface DeviceSession extends SessionInfo {
  userAgent: string | null;
  /** True for the session making the request. */
  current: boolean;
}

/** `GET /api/config`: what a browser app needs to reach this server. Public by design. */
export interface PublicConfig {
  /** The anon API key (role `anon`: grants only what RLS gives anon). */
  anonKey: string;
  /** The realtime endpoint, relative to the server's origin unless absolute. */
  realtimeUrl: string;
  /** The data API (PostgREST dialect), relative unless absolute. */
  restUrl: string;
}
