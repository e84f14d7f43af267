import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Config } from '../config/config.ts';
import type { IssuedSession } from '../sessions/sessions.service.ts';

type CookieConfig = Pick<Config, 'secureCookies' | 'sessions'>;

/**
 * Cookie names. Over https they take the `__Host-` prefix, which the browser only accepts with
 * Secure, Path=/ and no Domain, so no sibling subdomain can plant or overwrite them.
 */
export function cookieNames(config: Pick<Config, 'secureCookies'>) {
  const p = config.secureCookies ? '__Host-' : '';
  return { access: `${p}hallpass-access`, refresh: `${p}hallpass-refresh`, binding: `${p}hallpass-binding` };
}

const base = (config: CookieConfig) =>
  ({ httpOnly: true, secure: config.secureCookies, sameSite: 'Lax', path: '/' }) as const;

export function readSessionCookies(c: Context, config: CookieConfig) {
  const names = cookieNames(config);
  return { accessToken: getCookie(c, names.access), refreshToken: getCookie(c, names.refresh) };
}

/** Sets the access cookie, and the refresh cookie when the session issued a new refresh token. */
export function setSessionCookies(c: Context, config: CookieConfig, issued: IssuedSession): void {
  const names = cookieNames(config);
  setCookie(c, names.access, issued.accessToken, { ...base(config), maxAge: config.sessions.accessTokenTtl });
  if (issued.refreshToken) {
    setCookie(c, names.refresh, issued.refreshToken, { ...base(config), maxAge: config.sessions.refreshTokenTtl });
  }
}

export function clearSessionCookies(c: Context, config: CookieConfig): void {
  const names = cookieNames(config);
  deleteCookie(c, names.access, base(config));
  deleteCookie(c, names.refresh, base(config));
}

export function setBindingCookie(c: Context, config: CookieConfig, value: string, maxAge: number): void {
  setCookie(c, cookieNames(config).binding, value, { ...base(config), maxAge });
}

export function readBindingCookie(c: Context, config: CookieConfig): string | undefined {
  return getCookie(c, cookieNames(config).binding);
}
