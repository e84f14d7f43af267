import { restoreBackup } from '@hallpass/server';
import type { CliCommand } from '../context.ts';

export const restoreCommand: CliCommand = (program, ctx) =>
  program
    .command('restore')
    .description(
      'restore a backup into the configured database (DATABASE_URL) or embedded data dir, which must be empty. ' +
        'Checks the .sha256 first and compares every table with the manifest after. Stop the servers first.',
    )
    .argument('<file>', 'the backup (its .pgdump / .tar.gz, .manifest.json or .sha256)')
    .option('--force', 'replace a non-empty target: drops its schemas (PostgreSQL) or moves the data dir aside (embedded)')
    .action(async (file: string, opts: { force?: boolean }) => {
      const manifest = await restoreBackup(ctx.config(), file, { force: opts.force ?? false, progress: ctx.progress });
      ctx.out(`restored ${manifest.file} (taken ${manifest.takenAt}); the server applies newer migrations when it starts`);
    });
