/**
 * Normalises an address the one way Hallpass stores it (trimmed, lower-case local part and domain),
 * or returns null when it is not a plausible address. Length is checked before the pattern so a huge
 * input costs nothing.
 */
export function normalizeEmail(input: string): string | null {
  const email = input.trim().toLowerCase();
  if (email.length < 3 || email.length > 254) return null;
  const at = email.lastIndexOf('@');
  if (at < 1 || at > 64) return null;
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (!localPart.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) return null;
  if (domain.length > 253 || !domainName.test(domain)) return null;
  return email;
}

// The dot-atom form of RFC 5322 (no quoted local parts, no IP literals), as mail services accept.
const localPart = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$/;
const domainName = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
