import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { device, hasChromium, launchBrowser, requestCode, screenshot, signIn, startAppServer, uniqueEmail, type TestServer } from './browser.ts';

// Sign-in flows in a real Chromium against the real server serving the built example app.
describe.skipIf(!hasChromium)('holiday-sale in a browser: sign-in', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startAppServer(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('signs in with the emailed code, keyboard only', async () => {
    const { context, page } = await device(browser);
    const email = uniqueEmail('code');
    await page.goto(server.url);
    // Focus starts in the email field: type and press Enter, no mouse.
    const emailField = page.getByLabel('Email', { exact: true });
    await emailField.waitFor();
    expect(await emailField.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.type(email);
    await page.keyboard.press('Enter');
    const codeField = page.getByLabel('6-digit code');
    await codeField.waitFor();
    expect(await codeField.getAttribute('autocomplete')).toBe('one-time-code');
    expect(await codeField.getAttribute('inputmode')).toBe('numeric');
    expect(await codeField.evaluate((el) => el === document.activeElement)).toBe(true);
    const { code } = await server.latestMail(email);
    await page.keyboard.type(code!);
    await page.getByTestId('view-signed_in').waitFor();
    expect(await page.getByTestId('who').textContent()).toBe(email);
    await page.getByTestId('devices').locator('li').first().waitFor();
    // The live badge settles: live with realtime; without it, "off" after a few tries, never stuck.
    await page.locator('[data-testid="live-badge"]:is([data-live="live"], [data-live="unavailable"])').waitFor();
    await screenshot(page, 'code-sign-in');
    await context.close();
  });

  it('signs in with the emailed link after pressing continue on the confirm page', async () => {
    const { context, page } = await device(browser);
    const email = uniqueEmail('link');
    await page.goto(server.url);
    await requestCode(page, email);
    const { link } = await server.latestMail(email);
    await page.goto(link!);
    // Opening the link only shows the confirm page; nothing is consumed yet.
    await page.getByRole('heading', { name: 'Continue signing in' }).waitFor();
    await screenshot(page, 'link-confirm');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('view-signed_in').waitFor();
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await page.getByTestId('who').textContent()).toBe(email);
    await screenshot(page, 'link-sign-in');
    await context.close();
  });

  it('locks after five wrong codes and signs in after sending again once the countdown ran out', async () => {
    const { context, page } = await device(browser);
    // The page's clock is ours to move: the resend countdown ends without the test waiting 30 s.
    await page.clock.install();
    const email = uniqueEmail('locked');
    await page.goto(server.url);
    await requestCode(page, email);
    const { code } = await server.latestMail(email);
    const wrong = code === '000000' ? '111111' : '000000';
    const field = page.getByLabel('6-digit code');
    const alert = page.getByRole('alert');
    for (let left = 4; left >= 1; left--) {
      await field.fill(wrong);
      await expect.poll(() => alert.textContent(), { timeout: 10_000 }).toContain(`${left} ${left === 1 ? 'try' : 'tries'} left`);
    }
    await field.fill(wrong);
    await page.getByRole('heading', { name: 'Sign-in locked' }).waitFor();
    const again = page.getByRole('button', { name: /Send a new code/ });
    expect(await again.isDisabled()).toBe(true);
    expect(await again.textContent()).toMatch(/in \d+ s/);
    await screenshot(page, 'locked');
    // The locked request refuses even the right code now.
    const refused = await page.evaluate(async () => (await fetch('/api/auth/session')).status);
    expect(refused).toBe(401);

    await page.clock.fastForward(31_000);
    await expect.poll(() => again.isDisabled(), { timeout: 10_000 }).toBe(false);
    await again.click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const fresh = await server.latestMail(email);
    expect(fresh.code).not.toBeNull();
    // Pasted with a space, as codes often are in mails: the field keeps the digits.
    await field.fill(`${fresh.code!.slice(0, 3)} ${fresh.code!.slice(3)}`);
    await page.getByTestId('view-signed_in').waitFor();
    await screenshot(page, 'after-lock-signed-in');
    await context.close();
  });

  it('drops a device to the sign-in screen when it is signed out from another device', async () => {
    const email = uniqueEmail('devices');
    const a = await device(browser);
    const b = await device(browser);
    await signIn(server, a.page, email);
    await signIn(server, b.page, email);
    const list = a.page.getByTestId('devices').locator('li');
    await a.page.reload();
    await list.nth(1).waitFor();
    expect(await list.count()).toBe(2);
    await a.page.locator('li[data-current="false"]').getByRole('button', { name: /Sign out/ }).click();
    await list.nth(1).waitFor({ state: 'detached' });
    expect(await list.count()).toBe(1);
    // B learns at its next session check (realtime, focus, or the 3 s fallback): no reload here.
    await b.page.getByTestId('view-signed_out').waitFor({ timeout: 8000 });
    await b.page.getByLabel('Email', { exact: true }).waitFor();
    await screenshot(b.page, 'signed-out-remotely');
    await Promise.all([a.context.close(), b.context.close()]);
  });

  it('refreshes once for several tabs asking at the same moment', async () => {
    const { context, page } = await device(browser);
    // The tabs' clock runs 10 s ahead of the server's, as a user's clock may: which tab adopts whose
    // token is decided by token ids, never by comparing the browser's time with the server's.
    await context.clock.install({ time: Date.now() + 10_000 });
    await signIn(server, page, uniqueEmail('tabs'));
    const second = await context.newPage();
    await second.goto(server.url);
    await second.getByTestId('view-signed_in').waitFor();
    let refreshes = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // The first tab's refresh is held at the network until the second tab has asked too, so the two
    // surely overlap, however slow the machine.
    await context.route('**/api/auth/refresh', async (route) => {
      refreshes++;
      await gate;
      await route.continue();
    });
    type Win = { hallpass: { refresh(): Promise<void> }; pending?: Promise<void> };
    const start = (p: typeof page) => p.evaluate(() => void ((window as unknown as Win).pending = (window as unknown as Win).hallpass.refresh()));
    const finish = (p: typeof page) => p.evaluate(() => (window as unknown as Win).pending);
    await start(page);
    await start(second);
    open();
    await Promise.all([finish(page), finish(second)]);
    expect(refreshes).toBe(1);
    // Both tabs still have a working session afterwards (no reuse-detection logout).
    for (const p of [page, second]) expect(await p.evaluate(async () => (await fetch('/api/auth/session')).status)).toBe(200);
    await context.close();
  });
});
