import { randomUUID } from 'node:crypto';
import { asService, createBatcher, type Tx } from '@hallpass/db';
import type { ProfileRow } from '../profiles/profiles.repository.ts';
import type { PasswordlessType, SendResponse } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { enqueueSignInMail, sealSignInMail, supersedePendingMail, type SignInMailPayload } from '../mail/outbox.ts';
import type { TemplateKind } from '../mail/templates.ts';
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
  verifyCodesHeadless,
  consumeHeadless,
  type AuthRequestRow,
  type HeadlessCodeOutcome,
  type HeadlessCodeToVerify,
  type HeadlessSignIn,
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
  /**
   * The API client calling through the Scalekit API (server to server): its sends count against a
   * per-client limit instead of the IP's (one backend sends for all its users), and no browser
   * binding is made (the caller proves the same browser by presenting the auth request id).
   */
  client?: string | undefined;
}

export interface SendInput {
  /** Already normalised by the caller. */
  email: string;
  state?: string | undefined;
  redirectTo?: string | undefined;
  /** A tenant slug; absent means the default tenant. */
  tenant?: string | undefined;
  /** OTP when the caller has nowhere for a link to point. @default config.passwordless.type */
  type?: PasswordlessType | undefined;
  /** A tenant id already resolved (an API client's tenant); wins over `tenant`. */
  tenantId?: string | undefined;
  /** Options the Scalekit API adds; the JSON API uses the configured defaults. */
  mail?: MailOptions | undefined;
}

/** How a request's mail is made (Scalekit's `template`, `template_variables`, `magiclink_auth_uri`). */
export interface MailOptions {
  /** Seconds the code and link work, 60-3600. @default config.passwordless.expiresIn */
  expiresIn?: number | undefined;
  /** The magic link is `<linkBase>?link_token=<token>`. @default this server's confirm page */
  linkBase?: string | undefined;
  /** SIGNIN or SIGNUP mail. @default decided by whether the address has a profile */
  template?: TemplateKind | undefined;
  /** Values for the mail (validated by the caller). */
  variables?: Readonly<Record<string, string>> | undefined;
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
  /** Code verifies of the Scalekit API (headless: no session). */
  verifyHeadless(item: HeadlessCodeToVerify): Promise<HeadlessCodeOutcome>;
}

export function createPasswordlessBatches(deps: Pick<Deps, 'config' | 'db' | 'clock'>): PasswordlessBatches {
  const { maxAttempts, attemptWindowSeconds, addressCodeBudget } = deps.config.passwordless;
  return {
    send: createBatcher((items) => sendRequests(deps.db, items, deps.config.mail.leaseSeconds), { name: 'send' }),
    verify: createBatcher((items) => verifyCodes(deps.db, { at: deps.clock.now(), maxAttempts, windowSeconds: attemptWindowSeconds, budget: addressCodeBudget }, items), { name: 'verify' }),
    verifyHeadless: createBatcher(
      (items) => verifyCodesHeadless(deps.db, { at: deps.clock.now(), maxAttempts, windowSeconds: attemptWindowSeconds }, items),
      { name: 'verify-headless' },
    ),
  };
}

function sendLimits(deps: PwDeps, tenantId: string, email: string, ctx: RequestContext): RateLimitRule[] {
  const r = deps.config.rateLimits;
  return [
    { key: `email:1m:${tenantId}:${email}`, limit: r.emailPerMinute, periodSeconds: 60 },
    { key: `email:1h:${tenantId}:${email}`, limit: r.emailPerHour, periodSeconds: 3600 },
    ctx.client
      ? { key: `client:10m:${ctx.client}`, limit: r.clientPer10Minutes, periodSeconds: 600 }
      : { key: `ip:10m:${ctx.ip ?? 'unknown'}`, limit: r.ipPer10Minutes, periodSeconds: 600 },
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

function linkUrl(deps: PwDeps, token: string | null, linkBase?: string): string | null {
  if (!token) return null;
  if (!linkBase) return `${deps.config.baseUrl}/passwordless/verify?link_token=${token}`;
  const url = new URL(linkBase);
  url.searchParams.set('link_token', token);
  return url.toString();
}

/** The sealed mail's data: code, link and, from the Scalekit API, the template and its variables. */
function mailPayload(tenantId: string, secrets: FreshSecrets, link: string | null, expiresAt: Date, mail: MailOptions | undefined): SignInMailPayload {
  return {
    tenantId,
    code: secrets.code,
    link,
    expiresAt: expiresAt.toISOString(),
    ...(mail?.template ? { template: mail.template } : {}),
    ...(mail?.variables && Object.keys(mail.variables).length ? { variables: { ...mail.variables } } : {}),
  };
}

function limitError(refused: { rejected: number; retryAfter: number }, ctx: RequestContext): AppError {
  const codes = ['email_rate_limited_minute', 'email_rate_limited_hour', ctx.client ? 'client_rate_limited' : 'ip_rate_limited'] as const;
  return new AppError(codes[refused.rejected]!, { retryAfter: refused.retryAfter });
}

/**
 * A resend takes the send limits in a statement of their own, before the transaction that rewrites
 * the request: the counters' row locks are then held for microseconds, not across its disk flush.
 */
async function throwIfLimited(deps: PwDeps, rules: RateLimitRule[], ctx: RequestContext): Promise<void> {
  const refused = await takeRateLimits(deps.db, rules);
  if (refused) throw limitError(refused, ctx);
}

/**
 * Starts a sign-in: records the request with digests of a fresh code and/or link token and enqueues
 * the email, in one statement with the rate-limit check (batched with concurrent sends; one batch
 * at a time holds the counters, for one commit). The answer is the same for every
 * well-formed address; whether the address has a profile is decided later, by the mail worker.
 */
export async function sendPasswordless(deps: PwDeps, input: SendInput, ctx: RequestContext): Promise<SendResult> {
  const type = input.type ?? deps.config.passwordless.type;
  const expiresIn = input.mail?.expiresIn ?? deps.config.passwordless.expiresIn;
  const tenantId = input.tenantId ?? (input.tenant === undefined ? defaultTenantId : await resolveTenant(deps, input.tenant));
  const id = randomUUID();
  const secrets = freshSecrets(deps, type, id);
  const binding = deps.config.passwordless.enforceSameBrowser && !ctx.client ? generateToken() : undefined;
  const expiresAt = new Date(deps.clock.now().getTime() + expiresIn * 1000);
  const mail = sealSignInMail(deps, id, mailPayload(tenantId, secrets, linkUrl(deps, secrets.linkToken, input.mail?.linkBase), expiresAt, input.mail));
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
    rules: sendLimits(deps, tenantId, input.email, ctx),
  });
  if (sent.refused) throw limitError(sent.refused, ctx);
  // The row is leased to this instance already: its worker delivers from memory, no claim needed.
  deps.mailHandoff.send({ id: sent.mail.id, auth_request_id: id, to_email: input.email, payload: mail, attempts: 1, known: sent.mail.known });
  return {
    response: { authRequestId: id, expiresAt: expiresAt.toISOString(), expiresIn, passwordlessType: type },
    ...(binding ? { binding } : {}),
  };
}

/** A tenant's id by slug. Read as service_role: tenants are under forced RLS like all user data. */
export async function resolveTenant(deps: Pick<Deps, 'db'>, slug: string): Promise<string> {
  const id = await asService(deps.db, (tx) => findTenantIdBySlug(tx, slug));
  if (!id) throw new AppError('unknown_tenant');
  return id;
}

/**
 * Issues a fresh code and link for a live request; the old ones stop working at once. `mail` repeats
 * the options the request was sent with (the Scalekit API keeps them with the request).
 */
export async function resendPasswordless(deps: PwDeps, authRequestId: string, ctx: RequestContext, mail?: MailOptions): Promise<SendResponse> {
  const expiresIn = mail?.expiresIn ?? deps.config.passwordless.expiresIn;
  const checkLive = (req: AuthRequestRow | undefined): AuthRequestRow => {
    if (!req) throw new AppError('auth_request_not_found');
    if (req.consumed_at) throw new AppError('auth_request_used');
    if (req.locked_at) throw new AppError('too_many_attempts');
    return req;
  };
  const first = checkLive(await findAuthRequest(deps.db, authRequestId));
  await throwIfLimited(deps, sendLimits(deps, first.tenant_id, first.email, ctx), ctx);
  const response = await deps.db.transaction(async (tx) => {
    const req = checkLive(await lockAuthRequest(tx, authRequestId));
    const secrets = freshSecrets(deps, req.passwordless_type, req.id);
    const expiresAt = new Date(deps.clock.now().getTime() + expiresIn * 1000);
    await replaceSecrets(tx, req.id, { codeHash: secrets.codeHash, linkHash: secrets.linkHash, expiresAt });
    await supersedePendingMail(tx, req.id);
    await enqueueSignInMail(deps, tx, {
      authRequestId: req.id,
      to: req.email,
      payload: mailPayload(req.tenant_id, secrets, linkUrl(deps, secrets.linkToken, mail?.linkBase), expiresAt, mail),
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

function linkProblem(deps: PwDeps, req: AuthRequestRow | undefined, linkToken: string, ctx: Pick<RequestContext, 'binding'>): LinkProblem | null {
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

function fail(code: ConstructorParameters<typeof AppError>[0], details?: Record<string, unknown>): { ok: false; error: AppError } {
  return { ok: false, error: new AppError(code, details ? { details } : {}) };
}

/**
 * Headless verify of a code (the Scalekit API): the same checks, attempt counting and batching as
 * `verifyCode`, but the success consumes the request and syncs the profile without opening a
 * session; the calling backend makes its own.
 */
export async function verifyCodeHeadless(deps: PwDeps, input: { authRequestId: string; code: string }): Promise<HeadlessSignIn> {
  const result = await deps.passwordlessBatches.verifyHeadless({
    authRequestId: input.authRequestId,
    presented: digest(deps.keys, `code:${input.authRequestId}`, input.code),
  });
  if (result.outcome === 'otp_invalid') throw new AppError('otp_invalid', { details: { attemptsRemaining: result.attemptsRemaining } });
  if (result.outcome !== 'ok') throw new AppError(result.outcome);
  return result.signIn;
}

/**
 * Headless verify of a magic link (the Scalekit API). With same-browser enforcement on, the caller
 * proves the browser by presenting the auth request id it got from the send (kept in that browser's
 * session); with it off, the link alone works on any device. A wrong `authRequestId` is a bad link.
 */
export async function verifyLinkHeadless(
  deps: PwDeps,
  input: { linkToken: string; authRequestId?: string | undefined },
  owns: (q: Tx, authRequestId: string) => Promise<boolean>,
): Promise<HeadlessSignIn & { authRequestId: string }> {
  const outcome = await deps.db.transaction(async (tx) => {
    const req = await findAuthRequestByLink(tx, digest(deps.keys, 'link', input.linkToken), true);
    const problem = linkProblem(deps, req, input.linkToken, {});
    if (problem) return fail(problem);
    if (!(await owns(tx, req!.id)) || (input.authRequestId !== undefined && input.authRequestId !== req!.id)) return fail('link_invalid');
    if (deps.config.passwordless.enforceSameBrowser && input.authRequestId === undefined) return fail('different_browser');
    const signIn = await consumeHeadless(tx, req!.id, deps.clock.now());
    if (!signIn) return fail('auth_request_used');
    return { ok: true as const, signIn: { ...signIn, authRequestId: req!.id } };
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.signIn;
}
