import { createHmac, generateKeyPairSync, KeyObject, sign as rawSign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { errors as joseErrors, jwtVerify, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClaims, loadSecrets, type SigningKey } from './signing-keys.ts';

let key: SigningKey;
const dir = mkdtempSync(join(tmpdir(), 'hallpass-keys-'));
beforeAll(async () => {
  key = (await loadSecrets({ dataDir: dir })).signing;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const claims = { iss: 'https://hallpass.test', sub: 'u1', aud: 'authenticated', iat: now, exp: now + 60, role: 'authenticated' };

describe('JWT verification with node:crypto', () => {
  it('accepts what this key signs, by our signer and by jose', async () => {
    expect(key.verifyJwt(key.signJwt(claims))).toEqual(claims);
    const byJose = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(key.privateKey);
    expect(key.verifyJwt(byJose)).toEqual(claims);
  });

  it('alg confusion: refuses alg none, HS256 keyed with the public key, and other algorithms', () => {
    const payload = b64(claims);
    expect(key.verifyJwt(`${b64({ alg: 'none' })}.${payload}.`)).toBeNull();
    expect(key.verifyJwt(`${b64({ alg: 'none', kid: key.kid })}.${payload}.${b64('x'.repeat(64))}`)).toBeNull();
    const hsHeader = b64({ alg: 'HS256', kid: key.kid });
    const publicAsSecret = JSON.stringify(key.publicJwk);
    const hs = createHmac('sha256', publicAsSecret).update(`${hsHeader}.${payload}`).digest('base64url');
    expect(key.verifyJwt(`${hsHeader}.${payload}.${hs}`)).toBeNull();
    const real = key.signJwt(claims).split('.');
    expect(key.verifyJwt(`${b64({ alg: 'ES384', kid: key.kid })}.${real[1]}.${real[2]}`)).toBeNull();
  });

  it('key substitution: refuses a foreign key with our kid, and ignores a key embedded in the header', async () => {
    const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forge = (header: object) => {
      const input = `${b64(header)}.${b64(claims)}`;
      return `${input}.${rawSign('sha256', Buffer.from(input), { key: foreign.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    };
    expect(key.verifyJwt(forge({ alg: 'ES256', kid: key.kid }))).toBeNull();
    expect(key.verifyJwt(forge({ alg: 'ES256', jwk: foreign.publicKey.export({ format: 'jwk' }) }))).toBeNull();
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    expect(key.verifyJwt(await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', jwk: { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! } }).sign(privateKey))).toBeNull();
  });

  it('refuses another kid, crit extensions, DER signatures, two spellings of one token and non-object payloads', () => {
    const [h, p, s] = key.signJwt(claims).split('.') as [string, string, string];
    const resign = (header: object, payload = p) => {
      const input = `${b64(header)}.${payload}`;
      return `${input}.${rawSign('sha256', Buffer.from(input), { key: keyObjectOf(key), dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    };
    expect(key.verifyJwt(resign({ alg: 'ES256', kid: 'someone-else' }))).toBeNull();
    expect(key.verifyJwt(resign({ alg: 'ES256', kid: key.kid, crit: ['b64'], b64: false }))).toBeNull();
    expect(key.verifyJwt(resign({ alg: 'ES256', kid: key.kid }, b64([1, 2])))).toBeNull();
    expect(key.verifyJwt(resign({ alg: 'ES256', kid: key.kid }, b64('"text"')))).toBeNull();
    const der = rawSign('sha256', Buffer.from(`${h}.${p}`), keyObjectOf(key)).toString('base64url');
    expect(key.verifyJwt(`${h}.${p}.${der}`)).toBeNull();
    expect(key.verifyJwt(`${h}.${p}.${s}=`)).toBeNull();
    expect(key.verifyJwt(`${h}.${p}.${s} `)).toBeNull();
    expect(key.verifyJwt(`${h}.${p}.${s}.`)).toBeNull();
    expect(key.verifyJwt(`${h}.${p}`)).toBeNull();
  });

  it('accepts a changed token only where jose does (fast-check, one character changed anywhere)', async () => {
    const token = key.signJwt(claims);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    await fc.assert(
      fc.asyncProperty(fc.nat(token.length - 1), fc.constantFrom(...alphabet), async (at, ch) => {
        const changed = token.slice(0, at) + ch + token.slice(at + 1);
        const ours = key.verifyJwt(changed) !== null;
        const jose = await jwtVerify(changed, key.publicKey, { algorithms: ['ES256'] }).then(() => true, () => false);
        if (ours) expect(jose).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('checks the registered claims as jose does (fast-check over exp, nbf, iat, iss and aud)', async () => {
    const at = new Date(now * 1000);
    const time = fc.oneof(fc.constant(undefined), fc.integer({ min: now - 3, max: now + 3 }), fc.constant('soon'));
    await fc.assert(
      fc.asyncProperty(time, time, time, fc.constantFrom('https://hallpass.test', 'https://evil.test', undefined), fc.constantFrom('authenticated', ['x', 'authenticated'], 'anon', ['anon'], undefined), async (exp, nbf, iat, iss, aud) => {
        const payload = Object.fromEntries(Object.entries({ sub: 'u1', exp, nbf, iat, iss, aud }).filter(([, v]) => v !== undefined));
        const token = await new SignJWT(payload as never).setProtectedHeader({ alg: 'ES256' }).sign(key.privateKey);
        const expected = { issuer: 'https://hallpass.test', audience: 'authenticated', requiredClaims: ['exp'] };
        const jose = await jwtVerify(token, key.publicKey, { algorithms: ['ES256'], ...expected, currentDate: at }).then(
          () => 'ok',
          (err: unknown) => (err instanceof joseErrors.JWTExpired ? 'expired' : 'invalid'),
        );
        const ours = checkClaims(key.verifyJwt(token)!, { now: at, issuer: expected.issuer, audience: expected.audience, required: ['exp'] });
        // jose reports an expired token as expired even when another claim is also wrong; both refuse.
        if (jose === 'ok' || ours === 'ok') expect(ours).toBe(jose);
      }),
      { numRuns: 300 },
    );
  });
});

/** Our own private key as a node:crypto KeyObject, to sign crafted tokens with it. */
const keyObjectOf = (k: SigningKey) => KeyObject.from(k.privateKey as Parameters<typeof KeyObject.from>[0]);
