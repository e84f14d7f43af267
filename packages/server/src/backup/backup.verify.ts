import { migrationStatus, type Db } from '@hallpass/db';
import { pino } from 'pino';
import type { Config } from '../config/config.ts';
import type { MailTransport, OutgoingMail } from '../mail/transports.ts';
import { loadAllMigrations, runMigrations, startServer } from '../server.ts';
import { BackupError } from './backup.errors.ts';
import type { BackupManifest } from './backup.manifest.ts';
import { createScratchTarget, openBackup, restoreInto, type Progress } from './backup.service.ts';

export interface VerifyOptions {
  /** Apply migrations the backup predates in the scratch copy instead of failing. */
  migrate?: boolean;
  progress?: Progress;
}

export interface VerifiedBackup {
  file: string;
  manifest: BackupManifest;
  /** Migrations applied to the scratch copy (with `migrate`). */
  migrated: string[];
}

/** Keeps the mail a test sign-in sends, and hands over each one as it arrives. */
function captureMail(): MailTransport & { next(): Promise<OutgoingMail> } {
  const waiting: Array<(m: OutgoingMail) => void> = [];
  const arrived: OutgoingMail[] = [];
  return {
    kind: 'capture',
    async send(mail) {
      const w = waiting.shift();
      if (w) w(mail);
      else arrived.push(mail);
    },
    next: () => {
      const m = arrived.shift();
      return m ? Promise.resolve(m) : new Promise((resolve) => waiting.push(resolve));
    },
    async close() {},
  };
}

/**
 * Signs a user in against `db` through the real code: a server on a free loopback port over it,
 * send, the code from the captured mail, verify, then the session answers. Uses this config's
 * secrets, as the server restored from this backup would.
 */
export async function proveSignIn(config: Readonly<Config>, db: Db, timeoutMs = 30_000): Promise<void> {
  const mail = captureMail();
  const server = await startServer(
    { ...config, host: '127.0.0.1', port: 0, appStaticDir: undefined, mail: { ...config.mail, devMailbox: false } },
    { db, mailer: mail, log: pino({ level: 'silent' }), print: () => {} },
  );
  try {
    const email = 'backup-verify@example.com';
    const post = (path: string, body: unknown, cookie?: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: config.baseUrl, ...(cookie ? { cookie } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    const sent = await post('/api/auth/passwordless/send', { email });
    if (sent.status !== 200) throw new BackupError('sign_in_failed', `send answered ${sent.status}: ${await sent.text()}`);
    const { authRequestId } = (await sent.json()) as { authRequestId: string };
    const letter = await Promise.race([
      mail.next(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new BackupError('sign_in_failed', 'no sign-in mail was sent')), timeoutMs).unref()),
    ]);
    const verified = await post('/api/auth/passwordless/verify', { authRequestId, code: letter.code });
    if (verified.status !== 200) throw new BackupError('sign_in_failed', `verify answered ${verified.status}: ${await verified.text()}`);
    const cookie = verified.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const session = await fetch(`${server.url}/api/auth/session`, { headers: { cookie }, signal: AbortSignal.timeout(timeoutMs) });
    if (session.status !== 200) throw new BackupError('sign_in_failed', `the new session answered ${session.status}`);
  } finally {
    await server.close();
  }
}

/**
 * `hallpass verify-backup`: checks the SHA-256, restores into a scratch database (a temp data dir for
 * the embedded database), checks the migrations (none pending, none changed), compares every table
 * with the manifest, signs a user in against the copy, and drops the scratch.
 */
export async function verifyBackup(config: Readonly<Config>, path: string | undefined, options: VerifyOptions = {}): Promise<VerifiedBackup> {
  const progress = options.progress ?? (() => {});
  const { files, manifest } = await openBackup(config, path);
  progress(`verifying ${manifest.file} (taken ${manifest.takenAt}): checksums match`);
  const scratch = await createScratchTarget(config, manifest.backend);
  try {
    const db = await restoreInto(scratch.target, files, manifest, { progress, pgBinDir: config.backup.pgBinDir });
    try {
      progress('checking migrations');
      const migrations = loadAllMigrations(config.appMigrationsDir);
      const status = await migrationStatus(db, migrations);
      const problems = [
        ...status.changed.map((m) => `${m} differs from this release's file`),
        ...status.unknown.map((m) => `${m} is unknown to this release (the backup is from a newer one)`),
      ];
      if (problems.length) throw new BackupError('migrations_differ', problems.join('; '));
      let migrated: string[] = [];
      if (status.pending.length) {
        const names = status.pending.map((m) => `${m.source} ${m.name}`).join(', ');
        if (!options.migrate) {
          throw new BackupError('migrations_differ', `the backup predates ${names}; pass --migrate to apply them to the scratch copy`);
        }
        progress(`applying ${names} to the scratch copy`);
        migrated = await runMigrations(db, config.appMigrationsDir);
      }
      progress('signing a user in against the restored copy');
      await proveSignIn(config, db);
      return { file: files.payload, manifest, migrated };
    } finally {
      await db.close();
    }
  } finally {
    await scratch.drop();
  }
}
