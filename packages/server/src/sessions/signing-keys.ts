import { createPrivateKey, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
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
  return { kid, alg: 'ES256', privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' }, signJwt: jwtSigner(keyObject, kid) };
}

/** ES256 compact JWS: the signature is r || s (IEEE P1363), as JWS requires, not DER. */
function jwtSigner(key: KeyObject, kid: string): (payload: object) => string {
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' })).toString('base64url');
  return (payload) => {
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
}

/** Prints a PEM of the public key (for operators who verify tokens elsewhere). */
export function publicKeyPem(key: SigningKey): Promise<string> {
  return exportSPKI(key.publicKey);
}
