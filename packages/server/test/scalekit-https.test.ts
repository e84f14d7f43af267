import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { WebSocket } from 'ws';
import { signApiKey } from '../src/sessions/api-keys.ts';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, uniqueEmail, type TestServer } from './harness.ts';
import { createApiClient } from '../src/scalekit/clients.service.ts';

/** Runs the SDK child with the test CA trusted; resolves with its JSON line. */
function runSdkChild(env: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL('./scalekit-sdk-child.mjs', import.meta.url).pathname], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe('the Scalekit API over https (TLS_CERT_FILE / TLS_KEY_FILE)', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hallpass-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    server = await startTestServer({ env: { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') } });
    // Starting a server (migrations on PGlite) takes long on a loaded machine.
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on https: the SDK (token over HTTP/1.1, gRPC over HTTP/2 by ALPN) sends and verifies', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { client, secret } = await createApiClient(server.deps, { name: 'tls-backend' });
    const email = uniqueEmail('tls');
    const result = await runSdkChild({
      HALLPASS_URL: server.url,
      CLIENT_ID: client.id,
      CLIENT_SECRET: secret,
      EMAIL: email,
      NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem'),
    });
    expect(result).toMatchObject({ email, state: 'over-tls' });
    // A child process loading the SDK: slow on a loaded machine.
  }, 180_000);

  it('keeps HTTP/1.1 pages and the realtime WebSocket working on the same https port', async () => {
    const ca = readFileSync(join(dir, 'cert.pem'));
    const health = await new Promise<{ status: number; version: string }>((resolve, reject) => {
      httpsGet(`${server.url}/healthz`, { ca }, (res) => {
        res.resume();
        resolve({ status: res.statusCode!, version: res.httpVersion });
      }).on('error', reject);
    });
    expect(health).toEqual({ status: 200, version: '1.1' });
    const anon = await signApiKey(server.deps, 'anon');
    const ws = new WebSocket(`${server.url.replace('https', 'wss')}/realtime/v1/websocket?apikey=${anon}&vsn=1.0.0`, { ca });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.close();
  });

  it('an untrusted client is refused by TLS, not served in clear', async () => {
    const session = connect(server.url);
    const error = await new Promise<Error>((resolve) => session.once('error', resolve));
    expect((error as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
    session.destroy();
  });
});
