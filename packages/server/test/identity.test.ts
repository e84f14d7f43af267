import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdentityResolver } from '../src/sessions/identity.ts';
import { revokeSessionRow } from '../src/sessions/sessions.repository.ts';
import { signAccessToken } from '../src/sessions/sessions.service.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { apiKey, createUsers, RawSocket } from './realtime-helpers.ts';

// One identity check for every surface (sessions/identity.ts): each kind of bad token is refused the
// same way by the resolver itself, the JSON API, the data API and realtime.

let server: TestServer;
let anon: string;
const bad: Array<[string, () => Promise<string>]> = [];

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  server = await startTestServer();
  anon = await apiKey(server, 'anon');
  const { signing } = server.deps;
  const users = await createUsers(server.deps, 2, 'identity');
  const [user, revoked] = users as [(typeof users)[number], (typeof users)[number]];
  const claims = JSON.parse(Buffer.from(user.token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const attacker = await generateKeyPair('ES256', { extractable: true });
  const ours = (payload: Record<string, unknown>) =>
    new SignJWT(payload).setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: 'JWT' }).sign(signing.privateKey);

  bad.push(
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT', kid: signing.kid })}.${b64(claims)}.`],
    [
      'HS256 signed with the public key',
      async () =>
        new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: signing.kid, typ: 'JWT' }).sign(new TextEncoder().encode(JSON.stringify(signing.publicJwk))),
    ],
    ['a foreign key with our kid', async () => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: signing.kid, typ: 'JWT' }).sign(attacker.privateKey)],
    [
      'an embedded jwk header',
      async () =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'ES256', kid: signing.kid, typ: 'JWT', jwk: await exportJWK(attacker.publicKey) })
          .sign(attacker.privateKey),
    ],
    [
      'expired',
      async () =>
        (
          await signAccessToken(
            { ...server.deps, clock: { now: () => new Date(Date.now() - 7200_000) } },
            { id: user.id, email: user.email, tenant_id: (claims.app_metadata as { tenant_id: string }).tenant_id },
            { id: user.sessionId, amr: [] },
          )
        ).token,
    ],
    [
      'a revoked session',
      async () => {
        await revokeSessionRow(server.db, revoked.sessionId, 'logout', new Date());
        return revoked.token;
      },
    ],
    ['service-role claims on a user key', async () => ours({ ...claims, role: 'service_role' })],
    ['a wrong issuer', async () => ours({ ...claims, iss: 'https://evil.example/auth/v1' })],
    ['a wrong audience', async () => ours({ ...claims, aud: 'service_role' })],
  );
}, 180_000);
afterAll(() => server?.stop());

describe('one identity check: bad tokens', () => {
  it('gives no identity for any of them, and a live user for a good token', async () => {
    const identities = createIdentityResolver(server.deps);
    for (const [name, make] of bad) {
      const credential = await identities.classify(await make());
      if (credential.ok) {
        // Only a well-signed token of a dead session classifies; its session check fails.
        expect(name).toBe('a revoked session');
        expect(credential.identity.kind).toBe('user');
        if (credential.identity.kind === 'user') expect(await identities.liveUser(credential.identity), name).toBe(false);
      }
      // Never service_role, whatever the token claims.
      if (credential.ok) expect(credential.identity.role, name).not.toBe('service_role');
    }
    const [good] = await createUsers(server.deps, 1, 'identity-good');
    const credential = await identities.classify(good!.token);
    expect(credential).toMatchObject({ ok: true, identity: { kind: 'user', role: 'authenticated', sub: good!.id } });
  });

  it('refuses them on the JSON API, the data API and realtime alike', async () => {
    const socket = await RawSocket.open(server, { apikey: anon });
    try {
      for (const [name, make] of bad) {
        const token = await make();
        const auth = { authorization: `Bearer ${token}` };

        const profile = await fetch(`${server.url}/api/profile`, { headers: auth });
        expect(profile.status, name).toBe(401);

        const rest = await fetch(`${server.url}/rest/v1/profiles?select=id`, { headers: { ...auth, apikey: anon } });
        expect(rest.status, name).toBe(401);
        expect(((await rest.json()) as { code: string }).code, name).toBe('PGRST301');

        const { reply } = await socket.join(`realtime:identity-${name.replace(/\W+/g, '-')}`, { postgres_changes: [{ event: '*', schema: 'public', table: 'profiles' }] }, token);
        expect(reply.status, name).toBe('error');
      }
    } finally {
      socket.close();
    }
  });
});
