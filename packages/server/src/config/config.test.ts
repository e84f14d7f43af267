import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig } from './config.ts';

describe('config', () => {
  it('has working defaults for `npm start` on a fresh machine', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, baseUrl: 'http://localhost:3000', databaseUrl: undefined, secureCookies: false });
    expect(c.dataDir).toMatch(/\.hallpass$/);
    expect(c.mail.devMailbox).toBe(true);
    expect(c.passwordless).toMatchObject({ type: 'LINK_OTP', expiresIn: 300, enforceSameBrowser: false, maxAttempts: 5 });
    expect(c.sessions.accessTokenTtl).toBe(900);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reports every problem at once', () => {
    try {
      loadConfig({ PORT: 'abc', PASSWORDLESS_EXPIRES_IN: '30', PASSWORDLESS_TYPE: 'SMS', HALLPASS_SECRET: 'short' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      for (const key of ['PORT', 'PASSWORDLESS_EXPIRES_IN', 'PASSWORDLESS_TYPE', 'HALLPASS_SECRET']) expect(problems).toContain(key);
    }
  });

  it('refuses production without SMTP, secret or https, and never shows the dev mailbox there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/SMTP_URL.*\n.*HALLPASS_SECRET|HALLPASS_SECRET/s);
    const prod = loadConfig({
      NODE_ENV: 'production',
      SMTP_URL: 'smtp://mail.example.com',
      HALLPASS_SECRET: 'x'.repeat(40),
      APP_BASE_URL: 'https://login.example.com',
    });
    expect(prod.mail.devMailbox).toBe(false);
    expect(prod.secureCookies).toBe(true);
  });

  it('redacts secrets when printed', () => {
    const c = loadConfig({ HALLPASS_SECRET: 's'.repeat(40), DATABASE_URL: 'postgres://app:hunter2@db:5432/app' });
    const shown = JSON.stringify(redactConfig(c));
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('s'.repeat(40));
  });
});
