import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { device, hasChromium, hasRealtime, launchBrowser, screenshot, signIn, startAppServer, uniqueEmail, type TestServer } from './browser.ts';

// Live sync across devices needs the realtime server (/realtime/v1/websocket). It is built on another
// branch; until the server here has it, these tests skip with a notice, and run once it is merged.
let server: TestServer | undefined;
let realtime = false;
if (hasChromium) {
  server = await startAppServer();
  realtime = await hasRealtime(server.url);
  if (!realtime) console.warn('NOTICE: the server has no /realtime/v1 endpoint; live-sync browser tests 3, 4 and 6 are skipped until realtime is merged.');
}

type Device = Awaited<ReturnType<typeof device>>;

const nameField = (page: Page) => page.getByTestId('profile-name');

async function saveName(page: Page, name: string): Promise<void> {
  await nameField(page).fill(name);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect.poll(() => page.getByTestId('save-status').textContent(), { timeout: 10_000 }).toBe('Saved.');
}

async function waitLive(page: Page): Promise<void> {
  await page.locator('[data-testid="live-badge"][data-live="live"]').waitFor({ timeout: 5000 });
}

/** One signed-in device per email, each with its live connection up. */
async function liveDevices(browser: Browser, ...emails: string[]) {
  const devices = await Promise.all(emails.map(() => device(browser)));
  for (const [i, d] of devices.entries()) await signIn(server!, d.page, emails[i]!);
  await Promise.all(devices.map((d) => waitLive(d.page)));
  return devices;
}

describe.skipIf(!hasChromium || !realtime)('holiday-sale in a browser: live sync (needs realtime)', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows a name changed on one device on the other within 2 s, and a sign-in elsewhere as profile_sync', async () => {
    const email = uniqueEmail('twodev');
    const [a, b] = (await liveDevices(browser, email, email)) as [Device, Device];
    await saveName(a.page, 'Ada from device A');
    const started = Date.now();
    await expect.poll(() => nameField(b.page).inputValue(), { timeout: 2000, interval: 50 }).toBe('Ada from device A');
    expect(Date.now() - started).toBeLessThan(2000);
    // B's badge says the change came from A, not from itself.
    const badge = await b.page.getByTestId('last-update').textContent();
    expect(badge).toContain(' on ');
    expect(badge).not.toContain('(this device)');

    const c = await device(browser);
    await signIn(server!, c.page, email);
    for (const p of [a.page, b.page]) await p.getByTestId('sync-notice').waitFor({ timeout: 3000 });
    await screenshot(b.page, 'live-two-devices');
    await Promise.all([a.context.close(), b.context.close(), c.context.close()]);
  });

  it('never shows one user another user’s profile or events', async () => {
    const ada = uniqueEmail('ada');
    const bob = uniqueEmail('bob');
    const [a, b] = (await liveDevices(browser, ada, bob)) as [Device, Device];
    await saveName(a.page, 'Only Ada');
    await saveName(b.page, 'Only Bob');
    // A third device signs in as Ada: Ada's pages hear of it, Bob's never.
    const c = await device(browser);
    await signIn(server!, c.page, ada);
    await a.page.getByTestId('sync-notice').waitFor({ timeout: 3000 });
    await saveName(c.page, 'Ada again');
    await expect.poll(() => nameField(a.page).inputValue(), { timeout: 2000 }).toBe('Ada again');
    // By now any leak would have arrived: Ada's events are delivered to Ada's pages first-hand above.
    expect(await nameField(b.page).inputValue()).toBe('Only Bob');
    expect(await b.page.getByTestId('sync-notice').count()).toBe(0);
    expect(await b.page.getByTestId('who').textContent()).toBe(bob);
    expect(await b.page.getByTestId('devices').locator('li').count()).toBe(1);
    expect(await b.page.content()).not.toContain(ada);
    await screenshot(b.page, 'two-users');
    await Promise.all([a.context.close(), b.context.close(), c.context.close()]);
  });

  it('shows the latest profile after being offline while another device changed it', async () => {
    const email = uniqueEmail('offline');
    const [a, b] = (await liveDevices(browser, email, email)) as [Device, Device];
    await b.context.setOffline(true);
    await saveName(a.page, 'Changed while B was offline');
    await b.context.setOffline(false);
    await expect.poll(() => nameField(b.page).inputValue(), { timeout: 5000 }).toBe('Changed while B was offline');
    await screenshot(b.page, 'back-online');
    await Promise.all([a.context.close(), b.context.close()]);
  });
});

afterAll(async () => {
  await server?.stop();
});
