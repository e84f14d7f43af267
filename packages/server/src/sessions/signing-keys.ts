import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, exportSPKI, type JWK, type CryptoKey } from 'jose';

/** The server's long-lived secrets: the HMAC/seal root secret and the JWT signing key. */
export interface ServerSecrets {
  secret: string;
  signing: SigningKey;
}

export interface SigningKey {
  kid: string;
  alg: 'ES256';
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  /**
   * Signs a JWT (header: alg, kid, typ JWT) with node:crypto directly: synchronous, about a quarter
   * of the CPU of jose's WebCrypto path. Any JWS library verifies it; ours is checked by jose.
   */
  signJwt(payload: object): string;
  /**
   * The payload of a JWT this key signed, or null: see `jwtVerifier`. Claims (expiry, issuer,
   * audience) are the caller's to check, with `checkClaims`.
   */
  verifyJwt(token: string): Record<string, unknown> | null;
}

interface StoredSecrets {
  secret: string;
  signingKey: JWK;
}

export interface LoadSecretsOptions {
  dataDir: string;
  /** HALLPASS_SECRET; when absent one is generated and kept in the data dir. */
  secret?: string | undefined;
  /** HALLPASS_JWT_PRIVATE_KEY as a private JWK (JSON) or PKCS#8 PEM; else generated and kept. */
  jwtPrivateKey?: string | undefined;
}

/**
 * Loads the secrets from env, or from `<dataDir>/secrets.json`, generating that file (mode 0600) on
 * first start. Several instances sharing one database must share these: set both env variables.
 */
export async function loadSecrets(options: LoadSecretsOptions): Promise<ServerSecrets> {
  let stored: StoredSecrets | undefined;
  if (!options.secret || !options.jwtPrivateKey) stored = await readOrCreateStored(options.dataDir);
  const secret = options.secret ?? stored!.secret;
  const signing = options.jwtPrivateKey
    ? await importSigningKey(options.jwtPrivateKey)
    : await signingKeyFromJwk(stored!.signingKey);
  return { secret, signing };
}

async function readOrCreateStored(dataDir: string): Promise<StoredSecrets> {
  const file = join(dataDir, 'secrets.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const stored: StoredSecrets = {
    secret: randomBytes(32).toString('base64url'),
    signingKey: await exportJWK(privateKey),
  };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    // wx: if another process created it first, use theirs.
    writeFileSync(file, JSON.stringify(stored, null, 2), { flag: 'wx', mode: 0o600 });
    return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets;
  }
}

async function importSigningKey(text: string): Promise<SigningKey> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return signingKeyFromJwk(JSON.parse(trimmed) as JWK);
  const privateKey = await importPKCS8(trimmed, 'ES256', { extractable: true });
  return signingKeyFromJwk(await exportJWK(privateKey));
}

async function signingKeyFromJwk(jwk: JWK): Promise<SigningKey> {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) {
    throw new Error('the JWT signing key must be a private EC P-256 key (ES256)');
  }
  const { d: _d, ...pub } = jwk;
  const publicJwk: JWK = { kty: pub.kty, crv: pub.crv, x: pub.x, y: pub.y };
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateKey = (await importJWK({ ...jwk, alg: 'ES256' }, 'ES256')) as CryptoKey;
  const publicKey = (await importJWK({ ...publicJwk, alg: 'ES256' }, 'ES256')) as CryptoKey;
  const keyObject = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  const publicKeyObject = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' });
  return {
    kid,
    alg: 'ES256',
    privateKey,
    publicKey,
    publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' },
    signJwt: jwtSigner(keyObject, kid),
    verifyJwt: jwtVerifier(publicKeyObject, kid),
  };
}

/** ES256 compact JWS: the signature is r || s (IEEE P1363), as JWS requires, not DER. */
function jwtSigner(key: KeyObject, kid: string): (payload: object) => string {
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' })).toString('base64url');
  return (payload) => {
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
}

const segment = /^[A-Za-z0-9_-]+$/;

/**
 * Verifies an ES256 compact JWS against this one key with node:crypto: synchronous, about a quarter
 * of the CPU of jose's WebCrypto path, which every authenticated request paid. What it accepts is
 * deliberately narrow:
 * - three base64url segments, nothing else (no padding, no stray characters, so no two spellings
 *   of one token);
 * - a header whose `alg` is ES256 (so `none`, HS256 signed with the public key, RS256... are
 *   refused before any crypto), with no `crit` extensions, and a `kid`, if any, that is ours. Keys
 *   in the header (`jwk`, `jku`, `x5c`) are ignored: only our key is ever used;
 * - a 64-byte r || s signature (IEEE P1363, as JWS requires) valid over `header.payload`;
 * - a payload that is a JSON object.
 */
function jwtVerifier(key: KeyObject, kid: string): (token: string) => Record<string, unknown> | null {
  return (token) => {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => segment.test(p))) return null;
    const [h, p, sig] = parts as [string, string, string];
    const header = parseObject(h);
    if (!header || header.alg !== 'ES256' || header.crit !== undefined || (header.kid !== undefined && header.kid !== kid)) return null;
    const signature = Buffer.from(sig, 'base64url');
    if (signature.length !== 64 || signature.toString('base64url') !== sig) return null;
    if (!verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, signature)) return null;
    return parseObject(p);
  };
}

function parseObject(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export type ClaimsCheck = 'ok' | 'expired' | 'invalid';

/**
 * The registered claims of a verified payload, as jose's jwtVerify checks them: `exp` (expired at
 * or after it), `nbf` and `iat` numeric, `nbf` not in the future, `iss` equal, `aud` equal or
 * listed, and every required claim present.
 */
export function checkClaims(
  payload: Record<string, unknown>,
  expected: { now: Date; issuer: string; audience?: string; required: readonly string[] },
): ClaimsCheck {
  for (const name of expected.required) if (payload[name] === undefined) return 'invalid';
  const now = Math.floor(expected.now.getTime() / 1000);
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (payload[name] !== undefined && (typeof payload[name] !== 'number' || !Number.isFinite(payload[name]))) return 'invalid';
  }
  if (payload.iss !== expected.issuer) return 'invalid';
  if (expected.audience !== undefined) {
    const aud = payload.aud;
    if (!(aud === expected.audience || (Array.isArray(aud) && aud.includes(expected.audience)))) return 'invalid';
  }
  if (typeof payload.nbf === 'number' && payload.nbf > now) return 'invalid';
  if (typeof payload.exp === 'number' && payload.exp <= now) return 'expired';
  return 'ok';
}

/** Prints a PEM of the public key (for operators who verify tokens elsewhere). */
export function publicKeyPem(key: SigningKey): Promise<string> {
  return exportSPKI(key.publicKey);
}
