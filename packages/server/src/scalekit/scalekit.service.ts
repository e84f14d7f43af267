import type { PasswordlessType } from '@hallpass/protocol';
import type { Deps } from '../deps.ts';
import { resolveAllowedRedirect } from '../http/redirects.ts';
import type { TemplateKind } from '../mail/templates.ts';
import {
  resendPasswordless,
  sendPasswordless,
  verifyCodeHeadless,
  verifyLinkHeadless,
  type MailOptions,
  type RequestContext,
} from '../passwordless/passwordless.service.ts';
import { normalizeEmail } from '../shared/email.ts';
import { AppError } from '../shared/errors.ts';
import { findClientRequest, insertClientRequest, type ClientRequestRow } from './clients.repository.ts';
import type { ClientIdentity } from './clients.service.ts';

/**
 * Scalekit's passwordless API over Hallpass's one passwordless core: both front doors (gRPC for the
 * SDK, REST for callers without it) call these, and these call the same service functions as
 * `/api/auth/passwordless/*`, so limits, outbox, audit and batching are the same. What Scalekit adds
 * (template, template variables, expires_in, magiclink_auth_uri) is validated here; the verify is
 * headless: it returns the verified email and opens no Hallpass session.
 */

type ScalekitDeps = Parameters<typeof sendPasswordless>[0];

/** A send as both front doors parse it (camelCase; absent fields undefined). */
export interface ScalekitSendInput {
  email: string;
  template?: TemplateKind | undefined;
  magiclinkAuthUri?: string | undefined;
  state?: string | undefined;
  expiresIn?: number | undefined;
  templateVariables?: Readonly<Record<string, string>> | undefined;
}

export interface ScalekitSendResult {
  authRequestId: string;
  /** Unix seconds. */
  expiresAt: number;
  expiresIn: number;
  passwordlessType: PasswordlessType;
}

export interface ScalekitVerifyResult {
  email: string;
  state: string | null;
  template: TemplateKind;
  passwordlessType: PasswordlessType;
}

/** Scalekit's limits for template variables; its reserved names are filled by the server. */
export const templateVariableLimits = {
  maxCount: 30,
  key: /^[A-Za-z_][A-Za-z0-9_]{0,63}$/,
  maxValueLength: 1024,
  reserved: ['otp', 'expiry_time_relative', 'link', 'expire_time', 'expiry_time'],
} as const;

const invalid = (path: string, message: string) => new AppError('invalid_request', { details: { issues: [{ path, message }] } });
// Control characters would reach mail headers (the subject carries app_name) and logs.
const controlChars = /[\u0000-\u001f\u007f]/;

function validateVariables(vars: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const entries = Object.entries(vars ?? {});
  const l = templateVariableLimits;
  if (entries.length > l.maxCount) throw invalid('template_variables', `at most ${l.maxCount} variables`);
  for (const [key, value] of entries) {
    if (!l.key.test(key)) throw invalid(`template_variables.${key.slice(0, 64)}`, 'a key is a letter or _ then up to 63 letters, digits or _');
    if ((l.reserved as readonly string[]).includes(key.toLowerCase())) throw invalid(`template_variables.${key}`, 'reserved: the server fills it');
    if (typeof value !== 'string' || value.length > l.maxValueLength) throw invalid(`template_variables.${key}`, `a value is a string of at most ${l.maxValueLength} characters`);
    if (controlChars.test(value)) throw invalid(`template_variables.${key}`, 'control characters are not allowed');
  }
  return Object.fromEntries(entries);
}

/**
 * Where a magic link may point: an absolute http(s) URL that the one redirect check
 * (`resolveAllowedRedirect`, REDIRECT_ALLOW_LIST) allows, without a fragment or its own link_token,
 * else `invalid_redirect`. A relative URI would resolve against Hallpass, not the caller's app.
 */
function allowedLinkBase(deps: Pick<Deps, 'config'>, uri: string): string {
  const resolved = uri.length <= 2048 && /^https?:\/\//i.test(uri) ? resolveAllowedRedirect(deps.config, uri) : null;
  if (!resolved) throw new AppError('invalid_redirect');
  const url = new URL(resolved);
  if (url.searchParams.has('link_token') || url.hash) throw new AppError('invalid_redirect');
  return url.href;
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The request's Scalekit options when `client` started it; anything else is not found to this client. */
async function ownRequest(deps: Pick<Deps, 'db'>, client: ClientIdentity, authRequestId: string | undefined): Promise<ClientRequestRow & { id: string }> {
  if (authRequestId === undefined || authRequestId === '') throw invalid('auth_request_id', 'required');
  if (!uuid.test(authRequestId)) throw new AppError('auth_request_not_found');
  const row = await findClientRequest(deps.db, authRequestId.toLowerCase());
  if (!row || row.client_id !== client.clientId) throw new AppError('auth_request_not_found');
  return { ...row, id: authRequestId.toLowerCase() };
}

const clientContext = (client: ClientIdentity, userAgent: string | null): RequestContext => ({ ip: null, userAgent, client: client.clientId });

const toResult = (r: { authRequestId: string; expiresAt: string; expiresIn: number; passwordlessType: PasswordlessType }): ScalekitSendResult => ({
  authRequestId: r.authRequestId,
  expiresAt: Math.floor(Date.parse(r.expiresAt) / 1000),
  expiresIn: r.expiresIn,
  passwordlessType: r.passwordlessType,
});

/**
 * Scalekit's send: validates, then the one passwordless send (same limits, with a per-client rule
 * in place of the per-IP one; same outbox). Without `magiclinkAuthUri` the mail carries a code only.
 */
export async function sendForClient(deps: ScalekitDeps, client: ClientIdentity, input: ScalekitSendInput, userAgent: string | null): Promise<ScalekitSendResult> {
  const email = normalizeEmail(input.email);
  if (!email) throw new AppError('invalid_email');
  if (input.expiresIn !== undefined && (!Number.isInteger(input.expiresIn) || input.expiresIn < 60 || input.expiresIn > 3600)) {
    throw invalid('expires_in', 'seconds, 60 to 3600');
  }
  if (input.state !== undefined && input.state.length > 1024) throw invalid('state', 'at most 1024 characters');
  const variables = validateVariables(input.templateVariables);
  const linkBase = input.magiclinkAuthUri ? allowedLinkBase(deps, input.magiclinkAuthUri) : undefined;
  const configured = deps.config.passwordless.type;
  if (!linkBase && configured === 'LINK') throw invalid('magiclink_auth_uri', 'required: this server sends magic links');
  const mail: MailOptions = { expiresIn: input.expiresIn ?? deps.config.passwordless.expiresIn, linkBase, template: input.template, variables };
  const sent = await sendPasswordless(
    deps,
    { email, state: input.state, tenantId: client.tenantId, type: linkBase ? configured : 'OTP', mail },
    clientContext(client, userAgent),
  );
  await insertClientRequest(deps.db, sent.response.authRequestId, {
    client_id: client.clientId,
    template: input.template ?? null,
    template_variables: variables,
    magiclink_auth_uri: linkBase ?? null,
    expires_in: mail.expiresIn!,
  });
  return toResult(sent.response);
}

/** Scalekit's resend: a fresh code and link with the request's own options; the old ones stop working. */
export async function resendForClient(deps: ScalekitDeps, client: ClientIdentity, authRequestId: string | undefined, userAgent: string | null): Promise<ScalekitSendResult> {
  const req = await ownRequest(deps, client, authRequestId);
  const response = await resendPasswordless(deps, req.id, clientContext(client, userAgent), {
    expiresIn: req.expires_in,
    linkBase: req.magiclink_auth_uri ?? undefined,
    template: req.template ?? undefined,
    variables: req.template_variables,
  });
  return toResult(response);
}

/**
 * Scalekit's verify, headless: a code (with its auth request id) or a link token (with the id when
 * same-browser enforcement is on). Returns the verified email and state; no session is opened.
 */
export async function verifyForClient(
  deps: ScalekitDeps,
  client: ClientIdentity,
  input: { code?: string | undefined; linkToken?: string | undefined; authRequestId?: string | undefined },
): Promise<ScalekitVerifyResult> {
  if (input.code !== undefined && input.code !== '') {
    const req = await ownRequest(deps, client, input.authRequestId);
    if (!/^\d{6}$/.test(input.code)) throw invalid('code', 'a 6-digit code');
    const v = await verifyCodeHeadless(deps, { authRequestId: req.id, code: input.code });
    return { email: v.email, state: v.state, template: req.template ?? (v.created ? 'SIGNUP' : 'SIGNIN'), passwordlessType: v.passwordlessType };
  }
  if (input.linkToken === undefined || input.linkToken === '') throw invalid('auth_credential', 'a code or a link_token');
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(input.linkToken)) throw new AppError('link_invalid');
  const authRequestId = input.authRequestId ? input.authRequestId.toLowerCase() : undefined;
  if (authRequestId !== undefined && !uuid.test(authRequestId)) throw new AppError('link_invalid');
  let template: TemplateKind | null = null;
  const v = await verifyLinkHeadless(deps, { linkToken: input.linkToken, authRequestId }, async (tx, id) => {
    const row = await findClientRequest(tx, id);
    template = row?.template ?? null;
    return row?.client_id === client.clientId;
  });
  return { email: v.email, state: v.state, template: template ?? (v.created ? 'SIGNUP' : 'SIGNIN'), passwordlessType: v.passwordlessType };
}
