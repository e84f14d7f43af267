import type { Config } from '../config/config.ts';

// C0 controls and DEL. Browsers strip tab, CR and LF from URLs, so `/\t/evil.example` becomes
// `//evil.example` (another host) in the browser while it looked like a path here.
const controlChars = /[\u0000-\u001f\u007f]/;

/**
 * The one check for a URL a caller asks us to send a browser to after sign-in (`redirectTo`, a magic
 * link's base URI): it is resolved with the WHATWG URL parser against `APP_BASE_URL`, exactly as a
 * browser would, and allowed only when the resolved origin is on the allow-list (and, for an entry
 * with a path, the resolved path is that path or below it, on a segment boundary).
 *
 * Returns the normalised absolute URL to store and later emit (never the raw input), or null when the
 * target is refused: control characters or a backslash anywhere (browsers read `\` as `/`), a scheme
 * other than http(s), user info, an encoded slash under a path-restricted entry, or any other origin.
 *
 * @example resolveAllowedRedirect(config, '/account') // 'http://localhost:3000/account'
 * @example resolveAllowedRedirect(config, '/\t/evil.example') // null
 */
export function resolveAllowedRedirect(config: Pick<Config, 'baseUrl' | 'redirectAllowList'>, input: string): string | null {
  if (controlChars.test(input) || input.includes('\\')) return null;
  let url: URL;
  try {
    url = new URL(input, config.baseUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username || url.password) return null;
  const allowed = config.redirectAllowList.some((entry) => {
    const base = new URL(entry);
    if (base.origin !== url.origin) return false;
    if (base.pathname === '/') return true;
    // Under a path-restricted entry an encoded slash could climb out of it on the receiving server.
    if (/%2f|%5c/i.test(url.pathname)) return false;
    const path = base.pathname.replace(/\/+$/, '');
    return url.pathname === path || url.pathname.startsWith(`${path}/`);
  });
  return allowed ? url.href : null;
}
