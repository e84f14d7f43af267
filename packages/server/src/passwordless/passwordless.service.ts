import { randomUUID } from 'node:crypto';
import { asService, createBatcher } from '@hallpass/db';
import type { ProfileRow } from '../profiles/profiles.repository.ts';
import type { PasswordlessType, SendResponse } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { enqueueSignInMail, sealSignInMail, supersedePendingMail } from '../mail/outbox.ts';
import { issueNewSession, prepareSession, type IssuedSession } from '../sessions/sessions.service.ts';
import { digest, digestsEqual, generateCode, generateToken } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import {
  completeSignInWrite,
  findAuthRequest,
  findAuthRequestByLink,
  findTenantIdBySlug,
  lockAuthRequest,
  replaceSecrets,
  sendRequests,
  takeRateLimits,
  verifyCodes,
  type AuthRequestRow,
  type CodeToVerify,
  type NewSend,
  type SendOutcome,
  type RateLimitRule,
  type SignInRow,
  type SignInWrite,
  type VerifyCodeOutcome,
} from './passwordless.repository.ts';

export const defaultTenantId = '00000000-0000-0000-0000-000000000000';

/** Who is asking, as the HTTP layer saw it. */
export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
  /** The same-browser binding cookie, when the browser sent one. */
  binding?: string | undefined;
}

export interface SendInput {
  /** Already normalised by the caller. */
  email: string;
  state?: string | undefined;
  redirectTo?: string | undefined;
  /** A tenant slug; absent means the default tenant. */
  tenant?: string | undefined;
}

export interface SendResult {
  response: SendResponse;
  /** A fresh binding value to set as a cookie (same-browser enforcement), when enabled. */
  binding?: string;
}

type PwDeps = Pick<Deps, 'config' | 'db' | 'keys' | 'signing' | 'clock' | 'mailQueued' | 'mailHandoff' | 'realtimeWritten' | 'passwordlessBatches'>;

/** This instance's group commit for the two hottest statements (see `createBatcher`). */
export interface PasswordlessBatches {
  send(item: NewSend): Promise<SendOutcome>;
  verify(item: CodeToVerify): Promise<VerifyCodeOutcome>;
}

export function createPasswordlessBatches(deps: Pick<Deps, 'config' | 'db' | 'clock'>): PasswordlessBatches {
  const { maxAttempts, attemptWindowSeconds, addressCodeBudget } = deps.config.passwordless;
  return {
    send: createBatcher((items) => sendRequests(deps.db, items, deps.config.mail.leaseSeconds)),
    verify: createBatcher((items) =>
      verifyCodes(deps.db, { at: deps.clock.now(), maxAttempts, windowSeconds: attemptWindowSeconds, budget: addressCodeBudget }, items),
    ),
  };
}

const sendLimitCodes = ['email_rate_limited_minute', 'email_rate_limited_hour', 'ip_rate_limited'] as const;

function sendLimits(deps: PwDeps, tenantId: string, email: string, ip: string | null): RateLimitRule[] {
  const r = deps.config.rateLimits;
  return [
    { key: `email:1m:${tenantId}:${email}`, limit: r.emailPerMinute, periodSeconds: 60 },
    { key: `email:1h:${tenantId}:${email}`, limit: r.emailPerHour, periodSeconds: 3600 },
    { key: `ip:10m:${ip ?? 'unknown'}`, limit: r.ipPer10Minutes, periodSeconds: 600 },
  ];
}

interface FreshSecrets {
  code: string | null;
  linkToken: string | null;
  codeHash: Buffer | null;
  linkHash: Buffer | null;
}

function freshSecrets(deps: PwDeps, type: PasswordlessType, authRequestId: string): FreshSecrets {
  const code = type === 'LINK' ? null : generateCode();
  const linkToken = type === 'OTP' ? null : generateToken();
  return {
    code,
    linkToken,
    // The code digest is bound to its request: the same six digits elsewhere digest differently.
    codeHash: code ? digest(deps.keys, `code:${authRequestId}`, code) : null,
    linkHash: linkToken ? digest(deps.keys, 'link', linkToken) : null,
  };
}

function linkUrl(deps: PwDeps, token: string | null): string | null {
  return token ? `${deps.config.baseUrl}/passwordless/verify?link_token=${token}` : null;
}

function limitError(refused: { rejected: number; retryAfter: number }): AppError {
  return new AppError(sendLimitCodes[refused.rejected]!, { retryAfter: refused.retryAfter });
}

/**
 * A resend takes the send limits in a statement of their own, before the transaction that rewrites
 * the request: the counters' row locks are then held for microseconds, not across its disk flush.
 */
async function throwIfLimited(deps: PwDeps, rules: RateLimitRule[]): Promise<void> {
  const refused = await takeRateLimits(deps.db, rules);
  if (refused) throw limitError(refused);
}

/**
 * Starts a sign-in: records the request with digests of a fresh code and/or link token and enqueues
 * the email, in one statement with the rate-limit check (batched with concurrent sends; one batch
 * at a time holds the counters, for one commit). The answer is the same for every
 * well-formed address; whether the address has a profile is decided later, by the mail worker.
 */
export async function sendPasswordless(deps: PwDeps, input: SendInput, ctx: RequestContext): Promise<SendResult> {
  const type = deps.config.passwordless.type;
  const expiresIn = deps.config.passwordless.expiresIn;
  const tenantId = input.tenant === undefined ? defaultTenantId : await resolveTenant(deps, input.tenant);
  const id = randomUUID();
  const secrets = freshSecrets(deps, type, id);
  const binding = deps.config.passwordless.enforceSameBrowser ? generateToken() : undefined;
  const expiresAt = new Date(deps.clock.now().getTime() + expiresIn * 1000);
  const mail = sealSignInMail(deps, id, {
    tenantId,
    code: secrets.code,
    link: linkUrl(deps, secrets.linkToken),
    expiresAt: expiresAt.toISOString(),
  });
  const sent = await deps.passwordlessBatches.send({
    request: {
      id,
      tenantId,
      email: input.email,
      type,
      codeHash: secrets.codeHash,
      linkHash: secrets.linkHash,
      bindingHash: binding ? digest(deps.keys, 'binding', binding) : null,
      state: input.state ?? null,
      redirectTo: input.redirectTo ?? null,
      expiresAt,
      ip: ctx.ip,
      userAgent: ctx.userAgent?.slice(0, 512) ?? null,
    },
    mail,
    rules: sendLimits(deps, tenantId, input.email, ctx.ip),
  });
  if (sent.refused) throw limitError(sent.refused);
  // The row is leased to this instance already: its worker delivers from memory, no claim needed.
  deps.mailHandoff.send({ id: sent.mail.id, auth_request_id: id, to_email: input.email, payload: mail, attempts: 1, known: sent.mail.known });
  return {
    response: { authRequestId: id, expiresAt: expiresAt.toISOString(), expiresIn, passwordlessType: type },
    ...(binding ? { binding } : {}),
  };
}

/** A tenant's id by slug. Read as service_role: tenants are under forced RLS like all user data. */
async function resolveTenant(deps: PwDeps, slug: string): Promise<string> {
  const id = await asService(deps.db, (tx) => findTenantIdBySlug(tx, slug));
  if (!id) throw new AppError('unknown_tenant');
  return id;
}

/** Issues a fresh code and link for a live request; the old ones stop working at once. */
export async function resendPasswordless(deps: PwDeps, authRequestId: string, ctx: RequestContext): Promise<SendResponse> {
  const expiresIn = deps.config.passwordless.expiresIn;
  const checkLive = (req: AuthRequestRow | undefined): AuthRequestRow => {
    if (!req) throw new AppError('auth_request_not_found');
    if (req.consumed_at) throw new AppError('auth_request_used');
    if (req.locked_at) throw new AppError('too_many_attempts');
    return req;
  };
  const first = checkLive(await findAuthRequest(deps.db, authRequestId));
  await throwIfLimited(deps, sendLimits(deps, first.tenant_id, first.email, ctx.ip));
  const response = await deps.db.transaction(async (tx) => {
    const req = checkLive(await lockAuthRequest(tx, authRequestId));
    const secrets = freshSecrets(deps, req.passwordless_type, req.id);
    const expiresAt = new Date(deps.clock.now().getTime() + expiresIn * 1000);
    await replaceSecrets(tx, req.id, { codeHash: secrets.codeHash, linkHash: secrets.linkHash, expiresAt });
    await supersedePendingMail(tx, req.id);
    await enqueueSignInMail(deps, tx, {
      authRequestId: req.id,
      to: req.email,
      payload: { tenantId: req.tenant_id, code: secrets.code, link: linkUrl(deps, secrets.linkToken), expiresAt: expiresAt.toISOString() },
    });
    return { authRequestId: req.id, expiresAt: expiresAt.toISOString(), expiresIn, passwordlessType: req.passwordless_type };
  });
  deps.mailQueued.wake();
  return response;
}

export interface Verified {
  profile: ProfileRow;
  created: boolean;
  issued: IssuedSession;
  state: string | null;
  redirectTo: string | null;
}

type Outcome = { ok: true; verified: Verified } | { ok: false; error: AppError };

/**
 * Verifies a code in one statement, batched with concurrent verifies (see `verifyCodes`). The request row is locked first, so
 * of any number of concurrent verifies of one code exactly one consumes it. A wrong code is counted
 * (committed) before the error is thrown; the sixth wrong code in the window, and anything after,
 * finds the request locked.
 */
export async function verifyCode(deps: PwDeps, input: { authRequestId: string; code: string }, ctx: RequestContext): Promise<Verified> {
  const prepared = prepareSession(deps, 'otp');
  const result = await deps.passwordlessBatches.verify({
    authRequestId: input.authRequestId,
    presented: digest(deps.keys, `code:${input.authRequestId}`, input.code),
    ...signInWrite(prepared, ctx),
  });
  if (result.outcome === 'otp_invalid') throw new AppError('otp_invalid', { details: { attemptsRemaining: result.attemptsRemaining } });
  if (result.outcome === 'too_many_attempts' && result.retryAfter !== undefined) {
    // The address's wrong-code budget is spent (someone may be guessing): codes wait, links still work.
    throw new AppError('too_many_attempts', { retryAfter: result.retryAfter, message: addressBudgetMessage });
  }
  if (result.outcome !== 'ok') throw new AppError(result.outcome);
  deps.realtimeWritten.wake();
  return finishSignIn(deps, result.signIn, prepared.refreshToken, result);
}

const addressBudgetMessage = 'Too many wrong codes for this address. Use the link in the email, or try a code again later.';

/** What the link page may show before anything is consumed. */
export type LinkPreview =
  | { ok: true; email: string }
  | { ok: false; code: 'link_invalid' | 'link_expired' | 'auth_request_used' | 'too_many_attempts' | 'different_browser' };

/** Looks at a link without consuming it (GET of the link page; mail scanners do this). */
export async function previewLink(deps: PwDeps, linkToken: string, ctx: RequestContext): Promise<LinkPreview> {
  const req = await findAuthRequestByLink(deps.db, digest(deps.keys, 'link', linkToken), false);
  const problem = linkProblem(deps, req, linkToken, ctx);
  return problem ? { ok: false, code: problem } : { ok: true, email: req!.email };
}

type LinkProblem = Extract<LinkPreview, { ok: false }>['code'];

function linkProblem(deps: PwDeps, req: AuthRequestRow | undefined, linkToken: string, ctx: RequestContext): LinkProblem | null {
  if (!req || !digestsEqual(req.link_hash, digest(deps.keys, 'link', linkToken))) return 'link_invalid';
  if (req.consumed_at) return 'auth_request_used';
  if (req.locked_at) return 'too_many_attempts';
  if (req.expires_at <= deps.clock.now()) return 'link_expired';
  if (req.binding_hash) {
    const presented = ctx.binding ? digest(deps.keys, 'binding', ctx.binding) : null;
    if (!presented || !digestsEqual(req.binding_hash, presented)) return 'different_browser';
  }
  return null;
}

/** Consumes a magic link (the POST from the confirm page, or the JSON API) and signs in. */
export async function verifyLink(deps: PwDeps, linkToken: string, ctx: RequestContext): Promise<Verified> {
  const prepared = prepareSession(deps, 'magic_link');
  const outcome = await deps.db.transaction(async (tx): Promise<Outcome> => {
    const req = await findAuthRequestByLink(tx, digest(deps.keys, 'link', linkToken), true);
    const problem = linkProblem(deps, req, linkToken, ctx);
    if (problem) return fail(problem);
    // One transaction with the lock above, so a failure leaves the link unused and nothing half-written.
    const signIn = await completeSignInWrite(tx, req!.id, { at: deps.clock.now(), ...signInWrite(prepared, ctx) });
    return { ok: true, verified: await finishSignIn(deps, signIn, prepared.refreshToken, { state: req!.state, redirectTo: req!.redirect_to }) };
  });
  if (!outcome.ok) throw outcome.error;
  deps.realtimeWritten.wake();
  return outcome.verified;
}

function signInWrite(prepared: ReturnType<typeof prepareSession>, ctx: RequestContext): Omit<SignInWrite, 'at'> {
  return {
    amr: prepared.amr,
    userAgent: ctx.userAgent?.slice(0, 512) ?? null,
    ip: ctx.ip,
    sessionExpiresAt: prepared.expiresAt,
    refreshHash: prepared.refreshHash,
  };
}

/**
 * The written sign-in (request consumed, profile synced as service_role, session opened, profile_sync
 * logged for every device of the user) becomes signed tokens.
 */
async function finishSignIn(
  deps: PwDeps,
  { profile, created, session }: SignInRow,
  refreshToken: string,
  req: { state: string | null; redirectTo: string | null },
): Promise<Verified> {
  const issued = await issueNewSession(deps, profile, session, refreshToken);
  return { profile, created, issued, state: req.state, redirectTo: req.redirectTo };
}

function fail(code: ConstructorParameters<typeof AppError>[0], details?: Record<string, unknown>): Outcome {
  return { ok: false, error: new AppError(code, details ? { details } : {}) };
}
