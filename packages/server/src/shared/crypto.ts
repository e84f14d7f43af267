import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** Keys derived from the one server secret, each for one purpose, so no key is reused across uses. */
export interface ServerKeys {
  /** HMAC-SHA256 key for code, link token, refresh token and binding digests. */
  digestKey: Buffer;
  /** AES-256-GCM key sealing outbox payloads at rest. */
  sealKey: Buffer;
}

export function deriveServerKeys(secret: string): ServerKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', secret, 'hallpass', info, 32));
  return { digestKey: derive('digest v1'), sealKey: derive('outbox seal v1') };
}

/** HMAC-SHA256 of `value` under the digest key, with a purpose prefix so digests never cross uses. */
export function digest(keys: ServerKeys, purpose: string, value: string): Buffer {
  return createHmac('sha256', keys.digestKey).update(`${purpose}\0${value}`).digest();
}

/** Constant-time equality of two digests (false, not a throw, for different lengths). */
export function digestsEqual(a: Uint8Array | null | undefined, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** A 6-digit code, uniform over 000000-999999, from the CSPRNG. */
export function generateCode(): string {
  return randomInt(0, 1_000_000).toString().padStart(6, '0');
}

/** 32 random bytes, base64url: link tokens, refresh tokens, binding cookies. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Encrypts and authenticates `plaintext` (AES-256-GCM): iv(12) | tag(16) | ciphertext. */
export function seal(keys: ServerKeys, plaintext: string, aad: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.sealKey, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function unseal(keys: ServerKeys, sealed: Uint8Array, aad: string): string {
  const buf = Buffer.from(sealed);
  const decipher = createDecipheriv('aes-256-gcm', keys.sealKey, buf.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(buf.subarray(12, 28));
  return Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8');
}
