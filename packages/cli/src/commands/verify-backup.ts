import { verifyBackup } from '@hallpass/server';
import type { CliCommand } from '../context.ts';

export const verifyBackupCommand: CliCommand = (program, ctx) =>
  program
    .command('verify-backup')
    .description(
      'check a backup (default: the newest in BACKUP_DIR): its SHA-256, a restore into a scratch database or temp data dir, ' +
        'the migrations, every table against the manifest, and a real sign-in against the copy; the scratch is dropped after',
    )
    .argument('[file]', 'the backup to check')
    .option('--migrate', 'apply migrations the backup predates to the scratch copy instead of failing')
    .action(async (file: string | undefined, opts: { migrate?: boolean }) => {
      const verified = await verifyBackup(ctx.config(), file, { migrate: opts.migrate ?? false, progress: ctx.progress });
      ctx.out(`ok: ${verified.file}`);
    });
