import { exitOnSignals, redactConfig, startBackupScheduler, startServer } from '@hallpass/server';
import type { CliCommand } from '../context.ts';

export const serveCommand: CliCommand = (program, ctx) =>
  program
    .command('serve', { isDefault: true })
    .description('run the server (migrates first); with BACKUP_SCHEDULE set it also takes, verifies and prunes backups')
    .action(async () => {
      const config = ctx.config();
      const server = await startServer(config);
      const log = server.deps.log;
      log.info({ config: redactConfig(config) }, 'configuration');
      const backups = config.backup.schedule
        ? startBackupScheduler(server.deps, { onRun: (outcome) => server.deps.metrics.backupRun(outcome) })
        : undefined;
      const where = config.databaseUrl ? 'PostgreSQL server' : `embedded PGlite in ${config.dataDir}/data`;
      ctx.out(`Hallpass is listening on ${config.baseUrl} (bound to ${server.url}), database: ${where}`);
      if (config.mail.devMailbox) ctx.out(`No SMTP_URL set: sign-in mail goes to the dev mailbox at ${config.baseUrl}/dev/mailbox`);
      if (backups) ctx.out(`Backups on "${config.backup.schedule}" (UTC) into ${config.backup.dir}`);
      // Graceful shutdown (see server.ts); a backup still running is abandoned with the process (its
      // temporary file is never taken for a backup: only sealed ones count).
      exitOnSignals(server);
    });
