import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../../../packages/server/test/harness.ts';

export { uniqueEmail } from '../../../packages/server/test/harness.ts';
export type { TestServer };

const chromiumPath = '/usr/bin/chromium';
const appDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** Whether Debian's chromium is here; when not, browser tests skip with a notice (never silently). */
export const hasChromium = existsSync(chromiumPath);
if (!hasChromium) console.warn(`NOTICE: ${chromiumPath} not found; browser tests are skipped. Install it with: apt-get install -y chromium`);

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * The real server serving the built example at `/`, with the example's migrations, on a known port
 * so the page's Origin is the server's own (the CSRF check compares them).
 */
export async function startAppServer(): Promise<TestServer> {
  const port = await freePort();
  return startTestServer({
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_BASE_URL: `http://127.0.0.1:${port}`,
      APP_STATIC_DIR: `${appDir}dist`,
      APP_MIGRATIONS_DIR: `${appDir}migrations`,
      // Several devices of one user sign in within a minute in these tests.
      RATE_LIMIT_EMAIL_PER_MINUTE: '50',
      RATE_LIMIT_EMAIL_PER_HOUR: '500',
      RATE_LIMIT_IP_PER_10_MINUTES: '1000',
    },
  });
}

/**
 * Whether the server speaks WebSocket at /realtime/v1/websocket: a real upgrade handshake with the
 * anon key. The realtime server is built on another branch; until it is merged the live tests skip.
 */
export async function hasRealtime(baseUrl: string): Promise<boolean> {
  const { anonKey } = (await (await fetch(`${baseUrl}/api/config`)).json()) as { anonKey: string };
  const url = new URL(`/realtime/v1/websocket?apikey=${anonKey}&vsn=1.0.0`, baseUrl);
  return new Promise((resolve) => {
    const req = request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
      },
      timeout: 3000,
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(true);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Saves the page to test-artifacts/ (CI keeps them) and, with UPDATE_SCREENSHOTS=1, to docs/screenshots/. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(`${repoRoot}test-artifacts`, { recursive: true });
  await page.screenshot({ path: `${repoRoot}test-artifacts/${name}.png` });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(`${repoRoot}docs/screenshots`, { recursive: true });
    await page.screenshot({ path: `${repoRoot}docs/screenshots/${name}.png` });
  }
}

/** Asks for a code in the page's sign-in form, keyboard only, and waits for the code step. */
export async function requestCode(page: Page, email: string): Promise<void> {
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Check your email' }).waitFor();
}

/** The whole code sign-in through the UI: email, code from the dev mailbox, signed-in view. */
export async function signIn(server: TestServer, page: Page, email: string): Promise<void> {
  await page.goto(server.url);
  await requestCode(page, email);
  const { code } = await server.latestMail(email);
  await page.getByLabel('6-digit code').fill(code!);
  await page.getByTestId('view-signed_in').waitFor();
}

/** A fresh browser context (one "device") with a page on the app. */
export async function device(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  return { context, page };
}
