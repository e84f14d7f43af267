import { systemClock, takeBackup, verifyBackup } from '@hallpass/server';
import type { CliCommand } from '../context.ts';
import { withDatabase } from './open-database.ts';

export const backupCommand: CliCommand = (program, ctx) =>
  program
    .command('backup')
    .description(
      'take a consistent backup of the whole database into BACKUP_DIR (pg_dump -Fc, or a copy of the embedded data dir), ' +
        'with a manifest and a .sha256, then apply BACKUP_KEEP_DAILY / BACKUP_KEEP_WEEKLY. ' +
        'The embedded database can only be backed up by the process that has it open: a running server does it on BACKUP_SCHEDULE.',
    )
    .option('--verify', 'verify the new backup afterwards (as verify-backup does)')
    .action(async (opts: { verify?: boolean }) => {
      const config = ctx.config();
      const taken = await withDatabase(config, (db) => takeBackup({ config, db, clock: systemClock }, ctx.progress));
      const file = taken.files.payload;
      const rows = Object.values(taken.manifest.tables).reduce((n, t) => n + t.rows, 0);
      ctx.progress(`backup complete: ${Object.keys(taken.manifest.tables).length} tables, ${rows} rows, ${taken.manifest.bytes} bytes`);
      if (opts.verify) {
        await verifyBackup(config, file, { progress: ctx.progress });
        ctx.progress('verified');
      }
      ctx.out(file);
    });
