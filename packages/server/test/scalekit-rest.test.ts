import { connect } from 'node:http2';
import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';
import { runClientsCommand } from '../src/scalekit/clients.cli.ts';

describe('API clients, /oauth/token and the REST shape of the Scalekit API', () => {
  let server: TestServer;
  let client: { id: string; secret: string; name: string };
  beforeAll(async () => {
    server = await startTestServer({ env: { REDIRECT_ALLOW_LIST: 'http://shop.localhost/' } });
    const lines: string[] = [];
    expect(await runClientsCommand(server.deps, ['create', '--name', 'shop-backend', '--json'], (l) => lines.push(l))).toBe(0);
    client = JSON.parse(lines[0]!);
    // Starting a server (migrations on PGlite) takes long on a loaded machine.
  }, 300_000);
  afterAll(() => server?.stop());

  const token = async (body: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  const form = (id: string, secret: string) => `grant_type=client_credentials&client_id=${encodeURIComponent(id)}&client_secret=${encodeURIComponent(secret)}`;
  const api = (path: string, accessToken: string | null, body: unknown) =>
    fetch(`${server.url}/api/v1/passwordless/email/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}) },
      body: JSON.stringify(body),
    });

  it('the CLI prints the secret once; only its digest is stored; list shows no secret', async () => {
    expect(client).toMatchObject({ id: expect.stringMatching(/^skc_[0-9a-f]{24}$/), secret: expect.stringMatching(/^sks_/), name: 'shop-backend' });
    const { rows } = await server.db.query<{ row: string; len: number }>('select row_to_json(c)::text as row, length(secret_hash) as len from hallpass.api_clients c where id = $1', [client.id]);
    expect(rows[0]!.len).toBe(32);
    expect(rows[0]!.row).not.toContain(client.secret.slice(4));
    const lines: string[] = [];
    await runClientsCommand(server.deps, ['list', '--json'], (l) => lines.push(l));
    const listed = JSON.parse(lines[0]!) as Array<Record<string, unknown>>;
    expect(listed.find((c) => c.id === client.id)).toMatchObject({ name: 'shop-backend', revokedAt: null });
    expect(lines[0]).not.toContain(client.secret);
  });

  it('issues tokens for form and HTTP Basic credentials; a new token never ends an older one', async () => {
    const a = await token(form(client.id, client.secret));
    expect(a.status).toBe(200);
    expect(a.headers.get('cache-control')).toBe('no-store');
    const first = (await a.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(first).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    const basic = Buffer.from(`${client.id}:${encodeURIComponent(client.secret)}`).toString('base64');
    const b = await token('grant_type=client_credentials', { authorization: `Basic ${basic}` });
    expect(b.status).toBe(200);
    const second = (await b.json()) as { access_token: string };
    for (const t of [first.access_token, second.access_token]) {
      expect((await api('send', t, { email: uniqueEmail('tok') })).status).toBe(200);
    }
  });

  it('refuses bad client credentials with 401 invalid_client and other grants with 400', async () => {
    for (const body of [form(client.id, 'sks_wrong'), form('skc_000000000000000000000000', client.secret), 'grant_type=client_credentials']) {
      const res = await token(body);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'invalid_client' });
    }
    const res = await token(`grant_type=password&client_id=${client.id}&client_secret=${client.secret}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'unsupported_grant_type' });
  });

  it('sends, verifies and resends with snake_case JSON, errors in Scalekit REST shape', async () => {
    const { access_token } = (await (await token(form(client.id, client.secret))).json()) as { access_token: string };
    expect((await api('send', null, { email: 'x@example.com' })).status).toBe(401);
    const email = uniqueEmail('rest');
    const sent = await api('send', access_token, { email, template: 'SIGNIN', state: 'st', expires_in: 600, magiclink_auth_uri: 'http://shop.localhost/cb' });
    expect(sent.status).toBe(200);
    const s = (await sent.json()) as { auth_request_id: string; expires_at: number; expires_in: number; passwordless_type: string };
    expect(s).toMatchObject({ expires_in: 600, passwordless_type: 'LINK_OTP' });
    expect(typeof s.expires_at).toBe('number');
    const unknownField = await api('send', access_token, { email, magicLinkAuthUri: 'x' });
    expect(unknownField.status).toBe(400);
    const bad = await api('verify', access_token, { code: '000000', auth_request_id: s.auth_request_id });
    const mail = await server.latestMail(email);
    if (mail.code !== '000000') {
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ code: 3, details: [{ '@type': 'type.googleapis.com/scalekit.v1.errdetails.ErrorInfo', error_code: 'otp_invalid', attemptsRemaining: 4 }] });
    }
    const resent = await api('resend', access_token, { auth_request_id: s.auth_request_id });
    expect(resent.status).toBe(200);
    const fresh = await server.latestMail(email);
    const ok = await api('verify', access_token, { code: fresh.code, auth_request_id: s.auth_request_id });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ email, state: 'st', template: 'SIGNIN', passwordless_type: 'LINK_OTP' });
    const again = await api('verify', access_token, { code: fresh.code, auth_request_id: s.auth_request_id });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ code: 9, details: [{ error_code: 'auth_request_used' }] });
    const missing = await api('resend', access_token, { auth_request_id: '00000000-0000-4000-8000-000000000000' });
    expect(missing.status).toBe(404);
  });

  it('one port, two HTTP versions: h2c with prior knowledge reaches the app too, even with the preface split across packets', async () => {
    const { port } = new URL(server.url);
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(Number(port), '127.0.0.1', resolve));
    // The preface arrives in two writes; the listener waits for enough bytes to decide.
    socket.setNoDelay(true);
    const session = connect(server.url, {
      createConnection: () => {
        const write = socket.write.bind(socket);
        let first = true;
        socket.write = ((chunk: Buffer, ...rest: never[]) => {
          if (first && Buffer.isBuffer(chunk) && chunk.length > 10) {
            first = false;
            write(chunk.subarray(0, 10));
            return write(chunk.subarray(10), ...rest);
          }
          return write(chunk, ...rest);
        }) as typeof socket.write;
        return socket;
      },
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/healthz' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    session.close();
  });

  it('a client of a tenant signs users into that tenant', async () => {
    const { rows } = await server.db.query<{ id: string }>(`insert into public.tenants (slug, name) values ('wholesale', 'Wholesale') returning id`);
    const lines: string[] = [];
    expect(await runClientsCommand(server.deps, ['create', '--name', 'b2b', '--tenant', 'wholesale', '--json'], (l) => lines.push(l))).toBe(0);
    const c = JSON.parse(lines[0]!) as { id: string; secret: string; tenantId: string };
    expect(c.tenantId).toBe(rows[0]!.id);
    const { access_token } = (await (await token(form(c.id, c.secret))).json()) as { access_token: string };
    const email = uniqueEmail('tenant');
    const s = (await (await api('send', access_token, { email })).json()) as { auth_request_id: string };
    const mail = await server.latestMail(email);
    expect((await api('verify', access_token, { code: mail.code, auth_request_id: s.auth_request_id })).status).toBe(200);
    const profile = await server.db.query<{ tenant_id: string }>('select tenant_id from public.profiles where email = $1', [email]);
    expect(profile.rows).toEqual([{ tenant_id: rows[0]!.id }]);
  });

  it('revoking a client ends its tokens at once', async () => {
    const lines: string[] = [];
    await runClientsCommand(server.deps, ['create', '--name', 'short-lived', '--json'], (l) => lines.push(l));
    const c = JSON.parse(lines[0]!) as { id: string; secret: string };
    const { access_token } = (await (await token(form(c.id, c.secret))).json()) as { access_token: string };
    expect(await runClientsCommand(server.deps, ['revoke', c.id], () => {})).toBe(0);
    expect((await api('send', access_token, { email: uniqueEmail() })).status).toBe(401);
    expect((await token(form(c.id, c.secret))).status).toBe(401);
  });
});
